//! The row changes of PostgreSQL's `pgoutput` logical decoding messages, protocol version 1, as
//! documented in "Logical Replication Message Formats". The replication client hands over each
//! message's bytes (it reads Begin, Commit and Message itself); this decodes the ones that carry rows:
//! Relation (a table's columns, sent before its first change in a session and after every change to
//! its schema), Insert, Update, Delete and Truncate. Values come as text, each column's output form.

/// A decoding failure: the message is not what protocol version 1 says.
#[derive(Debug, thiserror::Error)]
#[error("pgoutput message {tag:?} is malformed: {what}")]
pub struct DecodeError {
    tag: char,
    what: String,
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Relation(Relation),
    Insert {
        relation: u32,
        new: Tuple,
    },
    Update {
        relation: u32,
        /// The whole old row under `REPLICA IDENTITY FULL` (tag `O`), or its key (`K`).
        old: Option<Tuple>,
        new: Tuple,
    },
    Delete {
        relation: u32,
        old: Tuple,
    },
    Truncate {
        relations: Vec<u32>,
    },
    /// Messages that carry no rows (Type, Origin, and those the client reads itself).
    Other,
}

/// A table as the stream describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    pub id: u32,
    pub namespace: String,
    pub name: String,
    /// Column names in the table's order.
    pub columns: Vec<String>,
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// A TOASTed value the change did not touch, which the stream leaves out.
    Unchanged,
    Text(String),
}

pub type Tuple = Vec<Value>;

/// Decodes one message.
pub fn decode(data: &[u8]) -> Result<Message, DecodeError> {
    let Some((&tag, body)) = data.split_first() else {
        return Err(DecodeError {
            tag: '?',
            what: "empty message".into(),
        });
    };
    let mut reader = Reader {
        tag: tag as char,
        rest: body,
    };
    let message = match tag {
        b'R' => Message::Relation(reader.relation()?),
        b'I' => {
            let relation = reader.u32()?;
            reader.expect(b'N')?;
            Message::Insert {
                relation,
                new: reader.tuple()?,
            }
        }
        b'U' => {
            let relation = reader.u32()?;
            let old = match reader.u8()? {
                b'K' | b'O' => {
                    let old = reader.tuple()?;
                    reader.expect(b'N')?;
                    Some(old)
                }
                b'N' => None,
                other => return Err(reader.error(format!("unexpected tuple tag {other:#x}"))),
            };
            Message::Update {
                relation,
                old,
                new: reader.tuple()?,
            }
        }
        b'D' => {
            let relation = reader.u32()?;
            match reader.u8()? {
                b'K' | b'O' => {}
                other => return Err(reader.error(format!("unexpected tuple tag {other:#x}"))),
            }
            Message::Delete {
                relation,
                old: reader.tuple()?,
            }
        }
        b'T' => {
            let count = reader.u32()?;
            let _options = reader.u8()?;
            let relations = (0..count).map(|_| reader.u32()).collect::<Result<_, _>>()?;
            Message::Truncate { relations }
        }
        _ => return Ok(Message::Other),
    };
    Ok(message)
}

struct Reader<'a> {
    tag: char,
    rest: &'a [u8],
}

impl Reader<'_> {
    fn error(&self, what: String) -> DecodeError {
        DecodeError {
            tag: self.tag,
            what,
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.rest.len() < n {
            return Err(self.error(format!("{n} bytes wanted, {} left", self.rest.len())));
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let bytes = self.take(2)?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn expect(&mut self, wanted: u8) -> Result<(), DecodeError> {
        match self.u8()? {
            byte if byte == wanted => Ok(()),
            other => Err(self.error(format!("expected {:?}, found {other:#x}", wanted as char))),
        }
    }

    /// A NUL-terminated string.
    fn string(&mut self) -> Result<String, DecodeError> {
        let end = self
            .rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.error("unterminated string".into()))?;
        let text = self.utf8(end)?;
        self.take(1)?;
        Ok(text)
    }

    fn utf8(&mut self, n: usize) -> Result<String, DecodeError> {
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError {
            tag: self.tag,
            what: "text that is not UTF-8".into(),
        })
    }

    fn relation(&mut self) -> Result<Relation, DecodeError> {
        let id = self.u32()?;
        let namespace = self.string()?;
        let name = self.string()?;
        let _replica_identity = self.u8()?;
        let count = self.u16()?;
        let mut columns = Vec::with_capacity(count.into());
        for _ in 0..count {
            let _flags = self.u8()?;
            columns.push(self.string()?);
            let _type_oid = self.u32()?;
            let _type_modifier = self.u32()?;
        }
        Ok(Relation {
            id,
            namespace,
            name,
            columns,
        })
    }

    fn tuple(&mut self) -> Result<Tuple, DecodeError> {
        let count = self.u16()?;
        let mut values = Vec::with_capacity(count.into());
        for _ in 0..count {
            values.push(match self.u8()? {
                b'n' => Value::Null,
                b'u' => Value::Unchanged,
                b't' => {
                    let length = self.u32()? as usize;
                    Value::Text(self.utf8(length)?)
                }
                other => return Err(self.error(format!("unexpected value kind {other:#x}"))),
            });
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &str) -> Vec<u8> {
        let mut bytes = vec![b't'];
        bytes.extend((value.len() as u32).to_be_bytes());
        bytes.extend(value.as_bytes());
        bytes
    }

    #[test]
    fn a_relation_message_gives_the_columns_in_order() {
        let mut data = vec![b'R'];
        data.extend(16385u32.to_be_bytes());
        data.extend(b"public\0power_plants\0");
        data.push(b'f');
        data.extend(2u16.to_be_bytes());
        for name in ["id", "name"] {
            data.push(1);
            data.extend(name.as_bytes());
            data.push(0);
            data.extend(25u32.to_be_bytes());
            data.extend((-1i32).to_be_bytes());
        }
        assert_eq!(
            decode(&data).unwrap(),
            Message::Relation(Relation {
                id: 16385,
                namespace: "public".into(),
                name: "power_plants".into(),
                columns: vec!["id".into(), "name".into()],
            })
        );
    }

    #[test]
    fn an_update_under_full_identity_carries_the_old_row_and_an_untouched_toasted_value() {
        let mut data = vec![b'U'];
        data.extend(7u32.to_be_bytes());
        data.push(b'O');
        data.extend(3u16.to_be_bytes());
        data.extend(text("a"));
        data.push(b'n');
        data.extend(text("{\"k\": \"é\"}"));
        data.push(b'N');
        data.extend(3u16.to_be_bytes());
        data.extend(text("a"));
        data.extend(text("2"));
        data.push(b'u');
        assert_eq!(
            decode(&data).unwrap(),
            Message::Update {
                relation: 7,
                old: Some(vec![
                    Value::Text("a".into()),
                    Value::Null,
                    Value::Text("{\"k\": \"é\"}".into())
                ]),
                new: vec![
                    Value::Text("a".into()),
                    Value::Text("2".into()),
                    Value::Unchanged
                ],
            }
        );
    }

    #[test]
    fn a_cut_message_is_an_error_not_a_panic() {
        let mut data = vec![b'I'];
        data.extend(7u32.to_be_bytes());
        data.push(b'N');
        data.extend(1u16.to_be_bytes());
        data.push(b't');
        data.extend(10u32.to_be_bytes());
        data.extend(b"abc");
        let error = decode(&data).unwrap_err().to_string();
        assert!(error.contains("10 bytes wanted, 3 left"), "{error}");
    }

    #[test]
    fn a_truncate_names_its_relations_and_other_messages_are_passed_over() {
        let mut data = vec![b'T'];
        data.extend(2u32.to_be_bytes());
        data.push(0);
        data.extend(5u32.to_be_bytes());
        data.extend(6u32.to_be_bytes());
        assert_eq!(
            decode(&data).unwrap(),
            Message::Truncate {
                relations: vec![5, 6]
            }
        );
        assert_eq!(decode(b"Y\0\0\0\x07public\0t\0").unwrap(), Message::Other);
    }
}
