//! Jute, ZooKeeper's binary serialization: big-endian integers, one-byte
//! booleans, length-prefixed buffers, strings and vectors (length -1 = null).
//!
//! Pure code: bytes in, values out. Nothing here touches sockets or files.
//! Every decoder checks lengths against what is left in the input before it
//! allocates, so no byte sequence can make it panic or allocate without bound.

use bytes::{BufMut, Bytes};

/// Why a jute record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JuteError {
    #[error("unexpected end of input: needed {needed} more bytes, {left} left")]
    Eof { needed: usize, left: usize },
    #[error("negative length {0}")]
    NegativeLength(i32),
    #[error("string is not valid UTF-8")]
    Utf8,
    #[error("invalid value: {0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, JuteError>;

/// ZooKeeper tells a null buffer (length -1: a znode created without data)
/// from an empty one, and clients show the difference. A null buffer is
/// carried as an empty slice of this static, recognised by its address, so
/// it survives from request to transaction to tree to snapshot to reply.
static NULL_MARK: [u8; 16] = *b"jute-null-buffer";

/// An empty buffer that encodes as null.
pub fn null_buffer() -> Bytes {
    Bytes::from_static(&NULL_MARK[..0])
}

/// Is this the null buffer (as opposed to an empty one)?
pub fn is_null(v: &[u8]) -> bool {
    v.is_empty() && std::ptr::eq(v.as_ptr(), NULL_MARK.as_ptr())
}

/// A cursor over a byte slice that decodes jute primitives.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(JuteError::Eof {
                needed: n,
                left: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub fn read_u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn read_bool(&mut self) -> Result<bool> {
        Ok(self.read_u8()? != 0)
    }

    pub fn read_i32(&mut self) -> Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn read_i64(&mut self) -> Result<i64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// A length prefix; -1 (null) reads as `None`.
    fn read_len(&mut self) -> Result<Option<usize>> {
        match self.read_i32()? {
            -1 => Ok(None),
            n if n < 0 => Err(JuteError::NegativeLength(n)),
            n => Ok(Some(n as usize)),
        }
    }

    /// A buffer; null reads as the empty `null_buffer()`, which writes back
    /// as null.
    pub fn read_buffer(&mut self) -> Result<Bytes> {
        match self.read_len()? {
            None => Ok(null_buffer()),
            Some(n) => Ok(Bytes::copy_from_slice(self.take(n)?)),
        }
    }

    /// A string; null reads as empty.
    pub fn read_string(&mut self) -> Result<String> {
        match self.read_len()? {
            None => Ok(String::new()),
            Some(n) => {
                let b = self.take(n)?;
                std::str::from_utf8(b)
                    .map(str::to_owned)
                    .map_err(|_| JuteError::Utf8)
            }
        }
    }

    /// A vector; null reads as empty. Each element takes at least
    /// `min_elem_size` bytes, so a lying count fails before allocating.
    pub fn read_vec<T: Record>(&mut self) -> Result<Vec<T>> {
        match self.read_len()? {
            None => Ok(Vec::new()),
            Some(n) => {
                let min = T::MIN_SIZE.max(1);
                if n.saturating_mul(min) > self.buf.len() {
                    return Err(JuteError::Eof {
                        needed: n.saturating_mul(min),
                        left: self.buf.len(),
                    });
                }
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(T::read(self)?);
                }
                Ok(v)
            }
        }
    }
}

/// Encoders for jute primitives, on anything that is a `BufMut`.
pub trait Writer: BufMut {
    fn write_bool(&mut self, v: bool) {
        self.put_u8(v as u8);
    }
    fn write_i32(&mut self, v: i32) {
        self.put_i32(v);
    }
    fn write_i64(&mut self, v: i64) {
        self.put_i64(v);
    }
    fn write_buffer(&mut self, v: &[u8]) {
        if is_null(v) {
            self.put_i32(-1);
            return;
        }
        self.put_i32(v.len() as i32);
        self.put_slice(v);
    }
    fn write_string(&mut self, v: &str) {
        self.write_buffer(v.as_bytes());
    }
    fn write_vec<T: Record>(&mut self, v: &[T])
    where
        Self: Sized,
    {
        self.put_i32(v.len() as i32);
        for item in v {
            item.write(self);
        }
    }
}

impl<B: BufMut> Writer for B {}

/// A value with a jute encoding.
pub trait Record: Sized {
    /// The fewest bytes an encoded value can take (used to bound vector counts).
    const MIN_SIZE: usize;
    fn read(r: &mut Reader<'_>) -> Result<Self>;
    fn write<W: Writer>(&self, w: &mut W);

    /// Decodes a whole value from `buf`, ignoring trailing bytes.
    fn decode(buf: &[u8]) -> Result<Self> {
        Self::read(&mut Reader::new(buf))
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write(&mut v);
        v
    }
}

impl Record for i32 {
    const MIN_SIZE: usize = 4;
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_i32()
    }
    fn write<W: Writer>(&self, w: &mut W) {
        w.write_i32(*self)
    }
}

impl Record for i64 {
    const MIN_SIZE: usize = 8;
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_i64()
    }
    fn write<W: Writer>(&self, w: &mut W) {
        w.write_i64(*self)
    }
}

impl Record for bool {
    const MIN_SIZE: usize = 1;
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_bool()
    }
    fn write<W: Writer>(&self, w: &mut W) {
        w.write_bool(*self)
    }
}

impl Record for String {
    const MIN_SIZE: usize = 4;
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_string()
    }
    fn write<W: Writer>(&self, w: &mut W) {
        w.write_string(self)
    }
}

impl Record for Bytes {
    const MIN_SIZE: usize = 4;
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_buffer()
    }
    fn write<W: Writer>(&self, w: &mut W) {
        w.write_buffer(self)
    }
}

impl<T: Record> Record for Vec<T> {
    const MIN_SIZE: usize = 4;
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_vec()
    }
    fn write<W: Writer>(&self, w: &mut W) {
        w.write_vec(self)
    }
}

/// Declares a struct whose jute encoding is its fields in order.
#[macro_export]
macro_rules! jute_record {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct $name { $($(#[$fmeta])* pub $field: $ty),* }

        impl $crate::jute::Record for $name {
            const MIN_SIZE: usize = 0 $(+ <$ty as $crate::jute::Record>::MIN_SIZE)*;
            #[allow(unused_variables)]
            fn read(r: &mut $crate::jute::Reader<'_>) -> $crate::jute::Result<Self> {
                Ok($name { $($field: <$ty as $crate::jute::Record>::read(r)?),* })
            }
            #[allow(unused_variables)]
            fn write<W: $crate::jute::Writer>(&self, w: &mut W) {
                $(<$ty as $crate::jute::Record>::write(&self.$field, w);)*
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    jute_record! {
        pub struct Sample { pub a: i32, pub b: i64, pub c: bool, pub s: String, pub d: Bytes, pub v: Vec<String> }
    }

    #[test]
    fn round_trip() {
        let s = Sample {
            a: -7,
            b: 1 << 40,
            c: true,
            s: "héllo".into(),
            d: Bytes::from_static(b"\0\x01"),
            v: vec!["x".into(), "".into()],
        };
        let bytes = s.to_bytes();
        assert_eq!(Sample::decode(&bytes).unwrap(), s);
    }

    #[test]
    fn null_and_empty_buffers_stay_apart() {
        let mut b = Vec::new();
        b.write_i32(-1);
        b.write_i32(0);
        let mut r = Reader::new(&b);
        let null = r.read_buffer().unwrap();
        let empty = r.read_buffer().unwrap();
        assert!(is_null(&null) && !is_null(&empty));
        let mut out = Vec::new();
        null.clone().write(&mut out);
        empty.write(&mut out);
        assert_eq!(out, b);
        assert!(!is_null(&Bytes::new()));
        assert!(!is_null(&Bytes::from_static(b"")));
    }

    #[test]
    fn null_buffer_and_vector_read_as_empty() {
        let mut b = Vec::new();
        b.write_i32(-1);
        b.write_i32(-1);
        let mut r = Reader::new(&b);
        assert!(r.read_buffer().unwrap().is_empty());
        assert!(r.read_vec::<String>().unwrap().is_empty());
    }

    #[test]
    fn lying_lengths_fail_cleanly() {
        let mut b = Vec::new();
        b.write_i32(i32::MAX);
        assert!(Reader::new(&b).read_buffer().is_err());
        assert!(Reader::new(&b).read_vec::<Sample>().is_err());
        b.clear();
        b.write_i32(-5);
        assert_eq!(
            Reader::new(&b).read_string(),
            Err(JuteError::NegativeLength(-5))
        );
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = Sample::decode(&data);
        }
    }
}
