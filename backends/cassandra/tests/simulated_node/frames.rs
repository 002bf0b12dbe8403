//! The answers a simulated node sends, encoded as CQL protocol v4 frames: the driver decodes
//! and type-checks them exactly as it would a real node's.

use bytes::{BufMut, Bytes, BytesMut};
use scylla_proxy::{ResponseFrame, ResponseOpcode};

/// `RESULT` kinds.
const VOID: i32 = 0x0001;
const ROWS: i32 = 0x0002;
const PREPARED: i32 = 0x0004;

/// Metadata flags.
const GLOBAL_TABLES_SPEC: i32 = 0x0001;
const NO_METADATA: i32 = 0x0004;

/// A CQL column type, as a table declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CqlType {
    Text,
    Blob,
    BigInt,
    Int,
    SmallInt,
    TinyInt,
    Timestamp,
    Boolean,
    Uuid,
    Inet,
    List(Box<CqlType>),
    Set(Box<CqlType>),
    Map(Box<CqlType>, Box<CqlType>),
}

impl CqlType {
    /// Parses a type as DDL writes it (`text`, `set<text>`, `map<text, text>`).
    pub(crate) fn parse(text: &str) -> Self {
        let text = text.trim();
        if let Some((outer, inner)) = text.strip_suffix('>').and_then(|t| t.split_once('<')) {
            return match outer.trim() {
                "list" => Self::List(Box::new(Self::parse(inner))),
                "set" => Self::Set(Box::new(Self::parse(inner))),
                "map" => {
                    let (key, value) = inner.split_once(',').expect("map<key, value>");
                    Self::Map(Box::new(Self::parse(key)), Box::new(Self::parse(value)))
                }
                other => panic!("the simulated node knows no collection {other}"),
            };
        }
        match text {
            "text" | "varchar" => Self::Text,
            "blob" => Self::Blob,
            "bigint" => Self::BigInt,
            "int" => Self::Int,
            "smallint" => Self::SmallInt,
            "tinyint" => Self::TinyInt,
            "timestamp" => Self::Timestamp,
            "boolean" => Self::Boolean,
            "uuid" => Self::Uuid,
            "inet" => Self::Inet,
            other => panic!("the simulated node knows no type {other}"),
        }
    }

    /// The `[option]` that names this type on the wire.
    fn write(&self, buffer: &mut BytesMut) {
        let id: u16 = match self {
            Self::Blob => 0x0003,
            Self::BigInt => 0x0002,
            Self::Boolean => 0x0004,
            Self::Int => 0x0009,
            Self::Timestamp => 0x000B,
            Self::Uuid => 0x000C,
            Self::Text => 0x000D,
            Self::Inet => 0x0010,
            Self::SmallInt => 0x0013,
            Self::TinyInt => 0x0014,
            Self::List(_) => 0x0020,
            Self::Map(..) => 0x0021,
            Self::Set(_) => 0x0022,
        };
        buffer.put_u16(id);
        match self {
            Self::List(element) | Self::Set(element) => element.write(buffer),
            Self::Map(key, value) => {
                key.write(buffer);
                value.write(buffer);
            }
            _ => {}
        }
    }
}

/// A column of an answer: its name and type.
pub(crate) type Column = (String, CqlType);

/// A cell of a row: its serialized value, `None` for null.
pub(crate) type Cell = Option<Vec<u8>>;

fn put_string(buffer: &mut BytesMut, text: &str) {
    buffer.put_u16(u16::try_from(text.len()).expect("a short string"));
    buffer.put_slice(text.as_bytes());
}

/// Column metadata with one table spec for every column.
fn put_metadata(buffer: &mut BytesMut, keyspace: &str, table: &str, columns: &[Column]) {
    buffer.put_i32(GLOBAL_TABLES_SPEC);
    buffer.put_i32(i32::try_from(columns.len()).expect("columns"));
    put_string(buffer, keyspace);
    put_string(buffer, table);
    for (name, cql_type) in columns {
        put_string(buffer, name);
        cql_type.write(buffer);
    }
}

fn result(request: &scylla_proxy::RequestFrame, body: BytesMut) -> ResponseFrame {
    ResponseFrame::new(
        request.params.for_response(),
        ResponseOpcode::Result,
        body.freeze(),
    )
}

/// `RESULT Void`: what a write answers.
pub(crate) fn void(request: &scylla_proxy::RequestFrame) -> ResponseFrame {
    let mut body = BytesMut::new();
    body.put_i32(VOID);
    result(request, body)
}

/// `RESULT Rows`: one page holding every row.
pub(crate) fn rows(
    request: &scylla_proxy::RequestFrame,
    (keyspace, table): (&str, &str),
    columns: &[Column],
    rows: &[Vec<Cell>],
) -> ResponseFrame {
    let mut body = BytesMut::new();
    body.put_i32(ROWS);
    put_metadata(&mut body, keyspace, table, columns);
    body.put_i32(i32::try_from(rows.len()).expect("rows"));
    for row in rows {
        assert_eq!(row.len(), columns.len(), "one cell per column");
        for cell in row {
            match cell {
                Some(bytes) => {
                    body.put_i32(i32::try_from(bytes.len()).expect("a cell"));
                    body.put_slice(bytes);
                }
                None => body.put_i32(-1),
            }
        }
    }
    result(request, body)
}

/// `RESULT Prepared`: the statement's ID, the types of its bind markers and of the columns
/// it returns (none for a write).
pub(crate) fn prepared(
    request: &scylla_proxy::RequestFrame,
    id: &[u8],
    (keyspace, table): (&str, &str),
    binds: &[Column],
    returned: &[Column],
) -> ResponseFrame {
    let mut body = BytesMut::new();
    body.put_i32(PREPARED);
    body.put_u16(u16::try_from(id.len()).expect("an ID"));
    body.put_slice(id);
    // Bind metadata: flags, count, then no partition-key indexes (the node does not route by
    // token: it is the only one), then the specs.
    body.put_i32(GLOBAL_TABLES_SPEC);
    body.put_i32(i32::try_from(binds.len()).expect("binds"));
    body.put_i32(0);
    put_string(&mut body, keyspace);
    put_string(&mut body, table);
    for (name, cql_type) in binds {
        put_string(&mut body, name);
        cql_type.write(&mut body);
    }
    if returned.is_empty() {
        body.put_i32(NO_METADATA);
        body.put_i32(0);
    } else {
        put_metadata(&mut body, keyspace, table, returned);
    }
    result(request, body)
}

/// A `[long string]` at the start of a request body (QUERY and PREPARE begin with one).
pub(crate) fn leading_long_string(body: &Bytes) -> Option<String> {
    let length = usize::try_from(i32::from_be_bytes(body.get(..4)?.try_into().ok()?)).ok()?;
    String::from_utf8(body.get(4..4 + length)?.to_vec()).ok()
}

/// The `[short bytes]` at the start of a request body (EXECUTE begins with the statement ID).
pub(crate) fn leading_short_bytes(body: &Bytes) -> Option<Vec<u8>> {
    let length = usize::from(u16::from_be_bytes(body.get(..2)?.try_into().ok()?));
    Some(body.get(2..2 + length)?.to_vec())
}

/// The bound values of an EXECUTE (protocol v4: ID, consistency, flags, then the values when
/// flag 0x01 is set, each an `[int]` length and bytes, -1 for null).
pub(crate) fn execute_values(body: &Bytes) -> Option<Vec<Cell>> {
    let id_length = usize::from(u16::from_be_bytes(body.get(..2)?.try_into().ok()?));
    let mut at = 2 + id_length + 2;
    let flags = *body.get(at)?;
    at += 1;
    if flags & 0x01 == 0 {
        return Some(Vec::new());
    }
    let count = u16::from_be_bytes(body.get(at..at + 2)?.try_into().ok()?);
    at += 2;
    let mut values = Vec::new();
    for _ in 0..count {
        let length = i32::from_be_bytes(body.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        match usize::try_from(length) {
            Ok(length) => {
                values.push(Some(body.get(at..at + length)?.to_vec()));
                at += length;
            }
            Err(_) => values.push(None),
        }
    }
    Some(values)
}

/// A `[short bytes]` as EXECUTE carries a statement ID: what a fault rule matches on.
pub(crate) fn short_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut encoded = (u16::try_from(bytes.len()).expect("an ID"))
        .to_be_bytes()
        .to_vec();
    encoded.extend_from_slice(bytes);
    encoded
}

/// Serialized values of the types the system tables hold.
pub(crate) mod value {
    pub(crate) fn text(text: &str) -> Option<Vec<u8>> {
        Some(text.as_bytes().to_vec())
    }

    pub(crate) fn int(value: i32) -> Option<Vec<u8>> {
        Some(value.to_be_bytes().to_vec())
    }

    pub(crate) fn uuid(bytes: [u8; 16]) -> Option<Vec<u8>> {
        Some(bytes.to_vec())
    }

    pub(crate) fn inet(address: std::net::IpAddr) -> Option<Vec<u8>> {
        Some(match address {
            std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
            std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
        })
    }

    pub(crate) fn text_set(items: &[&str]) -> Option<Vec<u8>> {
        let mut bytes = i32::try_from(items.len())
            .expect("items")
            .to_be_bytes()
            .to_vec();
        for item in items {
            bytes.extend_from_slice(&i32::try_from(item.len()).expect("item").to_be_bytes());
            bytes.extend_from_slice(item.as_bytes());
        }
        Some(bytes)
    }
}
