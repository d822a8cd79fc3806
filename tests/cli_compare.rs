//! The same script through Apache's zkCli.sh and through `rzk cli`, each against its own
//! fresh server of the target kind: stdout and stderr must match once times, zxids and
//! session ids are masked (watch events are compared as a sorted list, since zkCli prints
//! them from its event thread).

mod cli;

use cli::{Server, normalize, rzk_cli, zkcli};

/// Ends every script: a watch whose event is the last one zkCli's event thread delivers, so
/// once it is printed every earlier event is too.
const END: &str = "stat -w /zz-end\ncreate /zz-end\n";
const END_MARKER: &str = "type:NodeCreated path:/zz-end";

fn compare(script: &str) {
    compare_on(script, Server::start)
}

fn compare_on(script: &str, start: fn() -> Server) {
    let script = format!("{script}{END}");
    let script = script.as_str();
    let java = {
        let server = start();
        zkcli(&server.addr(), script, Some(END_MARKER))
    };
    let ours = {
        let server = start();
        rzk_cli(&server.addr(), &[], script)
    };
    let (j_out, r_out) = (normalize(&java.stdout), normalize(&ours.stdout));
    let (j_err, r_err) = (normalize(&java.stderr), normalize(&ours.stderr));
    let show = || {
        format!(
            "--- zkCli stdout\n{}\n--- rzk stdout\n{}\n--- zkCli stderr\n{}\n--- rzk stderr\n{}",
            java.stdout, ours.stdout, java.stderr, ours.stderr
        )
    };
    assert_eq!(j_out.lines, r_out.lines, "stdout differs\n{}", show());
    assert_eq!(
        j_out.events,
        r_out.events,
        "watch events differ\n{}",
        show()
    );
    assert_eq!(j_err.lines, r_err.lines, "stderr differs\n{}", show());
    assert!(!r_out.lines.is_empty() && !r_err.lines.is_empty());
    assert!(
        r_out.events.iter().any(|e| e.ends_with(END_MARKER)),
        "{}",
        show()
    );
}

/// Node commands, errors, ACLs, auth, history/redo, config, reconfig, connect/close.
const BASIC: &str = r#"create /a
create /a
create /a/b "hello world"
create -s /a/seq- x
create -e /a/eph e
create -c /cont
create -t 10000 /ttl t
create -t 10000 -e /ttl2 t
create -c -s /c2
create -t abc /ttl3
create /nop/x
create /acl1 d world:anyone:r
create /acl2 d digest:user:pass:cdrwa
create
create noslash
create /a/
get /a/b
get -s /a/b
get /nonexist
get /a
set /a/b newdata
set -s /a/b newdata2
set -v 99 /a/b x
set -v 3 /a/b x
set /nonexist x
stat /a
stat /nonexist
ls /a
ls -s /a
ls -R /a
ls /nonexist
delete /a
delete /nonexist
delete -v 9 /a/b
getAcl /a
getAcl -s /a
getAcl /acl2
setAcl /a world:anyone:cdrwa
setAcl -s /a world:anyone:cdrwa
setAcl -v 9 /a world:anyone:cdrwa
setAcl -R /a world:anyone:cdrwa
setAcl /nonexist world:anyone:r
getAcl /a/b
sync /a
getEphemerals
getEphemerals /a
getAllChildrenNumber /a
getAllChildrenNumber /nonexist
whoami
get /acl1
set /acl1 x
addauth digest user:pass
whoami
printwatches
printwatches off
printwatches
printwatches on
history
redo 0
redo 999
config
config -s
config -c
reconfig -add 2=127.0.0.1:2888:3888;2181
reconfig -remove 3
deleteall /a
deleteall /nonexist
ls /
close
ls /
ls /
connect
"#;

/// Watches: one-shot, persistent, recursive, dedup of one notification, removal.
const WATCHES: &str = r#"create /w
create /w/a 1
create /w/b 2
create /w/b/c 3
get -w /w/a
ls -w /w/a
stat -w /w/a
get -w /w/a
delete /w/a
ls -w /w
get -w /w
create /w/d
set /w x
stat -w /w/none
create /w/none
get -s -w /w/b
set -s /w/b y
ls -R /w
ls -R -w /w/b
create /w/b/e
deleteall -b 2 /w/b
ls /w
printwatches off
printwatches on
addWatch /w
addWatch -m PERSISTENT /w/d
addWatch -m FOO /w
create /w/x
set /w/d 1
removewatches /w
removewatches /w/d -d
removewatches /w/d -c
removewatches /zz
config -w
stat -w /w
removewatches /w -c
removewatches /w -d
ls /zookeeper
ls /zookeeper
"#;

/// Quotas under /zookeeper/quota.
const QUOTAS: &str = r#"create /q
create /q/x
setquota -n 10 /q
get /zookeeper/quota/q/zookeeper_limits
setquota -b 100 /q
get /zookeeper/quota/q/zookeeper_limits
setquota -N 5 /q
setquota -B 50 /q
get /zookeeper/quota/q/zookeeper_limits
listquota /q
setquota -n 3 /q/x
setquota -n 3 /zookeeper/quota/q
setquota -n 3 /nonexist
setquota -n abc /q
setquota -n 0 /q
delquota -b /q
get /zookeeper/quota/q/zookeeper_limits
delquota -N /q
delquota -B /q
delquota -n /q
get /zookeeper/quota/q/zookeeper_limits
listquota /q
ls -R /zookeeper
delquota /q
ls -R /zookeeper
delquota /q
listquota /q
listquota /nonexist
create /q2
create /q2/y
setquota -n 2 /q2/y
setquota -n 2 /q2
delquota /q2/y
ls -R /zookeeper/quota
"#;

#[test]
fn basic_commands_match_zkcli() {
    compare(BASIC);
}

#[test]
fn watches_match_zkcli() {
    compare(WATCHES);
}

#[test]
fn quotas_match_zkcli() {
    compare(QUOTAS);
}

/// Dynamic config and reconfiguration on a one-member ensemble: `config` in its three
/// forms, a committed incremental reconfig, and the refusals zkCli reports.
const RECONFIG: &str = r#"config
config -c
config -s
reconfig -add 2=127.0.0.1:1:2;3
reconfig -remove 2
reconfig -s -remove 7
config
reconfig -v 0 -remove 5
reconfig -members 1=127.0.0.1:1:2;3
reconfig
reconfig -add 2=x -members 1=y
"#;

/// The same commands against a standalone server: both refuse reconfig
/// (disabled) and show an empty config, and must say so alike.
#[test]
fn config_and_reconfig_on_a_standalone_server_match_zkcli() {
    compare(RECONFIG);
}

#[test]
fn config_and_reconfig_match_zkcli() {
    compare_on(RECONFIG, Server::start_reconfigurable);
}
