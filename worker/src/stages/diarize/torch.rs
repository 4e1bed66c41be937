//! Reads the float tensors of a PyTorch checkpoint in the legacy (non-zip) format that
//! `torch.save` wrote before version 1.6: three small pickles (magic number, protocol
//! version, system info), the pickled object, the pickled list of storage keys, then each
//! storage's raw data after its 8-byte element count.
//!
//! Only what a state dict needs is understood: a small pickle machine builds a value tree,
//! and every `torch._utils._rebuild_tensor_v2` call in it becomes a named tensor. Anything
//! else (an unknown opcode, a storage that is not `FloatStorage`, a strided view) is a
//! [`TorchError`], never a panic: the file is checked by SHA-256 at install time, but a
//! model folder can still be tampered with.

use std::collections::HashMap;

/// A float tensor: its shape and its values in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Size of each dimension.
    pub shape: Vec<usize>,
    /// The values, `shape.iter().product()` of them.
    pub values: Vec<f32>,
}

/// Why a checkpoint cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TorchError {
    /// The bytes end inside a pickle or a storage.
    #[error("the checkpoint is truncated")]
    Truncated,
    /// Something this reader does not understand.
    #[error("not a checkpoint this reader understands: {0}")]
    Unsupported(String),
}

/// A value of the pickle machine.
#[derive(Debug, Clone)]
enum Value {
    None,
    Bool,
    Int(i64),
    /// A number the reader does not need (a float, or an integer wider than 64 bits).
    Opaque,
    Str(String),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String),
    Call(Box<Value>, Vec<Value>),
    Persistent(Box<Value>),
    Mark,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TorchError> {
        let end = self.at.checked_add(n).ok_or(TorchError::Truncated)?;
        let slice = self.bytes.get(self.at..end).ok_or(TorchError::Truncated)?;
        self.at = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, TorchError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, TorchError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Result<String, TorchError> {
        let rest = self.bytes.get(self.at..).ok_or(TorchError::Truncated)?;
        let end = rest.iter().position(|&b| b == b'\n').ok_or(TorchError::Truncated)?;
        let line = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.at += end + 1;
        Ok(line)
    }

    /// Runs one pickle to its STOP and returns the value it built.
    fn pickle(&mut self) -> Result<Value, TorchError> {
        let unsupported = |what: String| TorchError::Unsupported(what);
        let mut stack: Vec<Value> = Vec::new();
        let mut memo: HashMap<u32, Value> = HashMap::new();
        let pop = |stack: &mut Vec<Value>| stack.pop().ok_or(unsupported("stack underflow".into()));
        let pop_mark = |stack: &mut Vec<Value>| -> Result<Vec<Value>, TorchError> {
            let mark = stack
                .iter()
                .rposition(|v| matches!(v, Value::Mark))
                .ok_or(unsupported("no mark".into()))?;
            let items = stack.split_off(mark + 1);
            stack.pop();
            Ok(items)
        };
        loop {
            let op = self.byte()?;
            match op {
                0x80 => {
                    self.byte()?;
                }
                b'.' => return pop(&mut stack),
                b'(' => stack.push(Value::Mark),
                b'}' => stack.push(Value::Dict(Vec::new())),
                b']' => stack.push(Value::List(Vec::new())),
                b')' => stack.push(Value::Tuple(Vec::new())),
                b'N' => stack.push(Value::None),
                0x88 => stack.push(Value::Bool),
                0x89 => stack.push(Value::Bool),
                b'K' => stack.push(Value::Int(i64::from(self.byte()?))),
                b'M' => {
                    let b = self.take(2)?;
                    stack.push(Value::Int(i64::from(u16::from_le_bytes([b[0], b[1]]))));
                }
                b'J' => stack.push(Value::Int(i64::from(self.u32()? as i32))),
                0x8a => {
                    let n = usize::from(self.byte()?);
                    let b = self.take(n)?;
                    if n > 8 {
                        // The file's magic number is one; no tensor field is.
                        stack.push(Value::Opaque);
                        continue;
                    }
                    let mut value: i64 = 0;
                    for (i, &byte) in b.iter().enumerate() {
                        value |= i64::from(byte) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        value -= 1i64 << (8 * n);
                    }
                    stack.push(Value::Int(value));
                }
                b'G' => {
                    self.take(8)?;
                    stack.push(Value::Opaque);
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let text = String::from_utf8_lossy(self.take(n)?).into_owned();
                    stack.push(Value::Str(text));
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    stack.push(Value::Global(format!("{module}.{name}")));
                }
                b'q' => {
                    let key = u32::from(self.byte()?);
                    memo.insert(key, stack.last().cloned().ok_or(unsupported("put".into()))?);
                }
                b'r' => {
                    let key = self.u32()?;
                    memo.insert(key, stack.last().cloned().ok_or(unsupported("put".into()))?);
                }
                b'h' | b'j' => {
                    let key = if op == b'h' { u32::from(self.byte()?) } else { self.u32()? };
                    let value = memo.get(&key).cloned().ok_or(unsupported("get".into()))?;
                    stack.push(value);
                }
                b't' => {
                    let items = pop_mark(&mut stack)?;
                    stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if stack.len() < n {
                        return Err(unsupported("stack underflow".into()));
                    }
                    let items = stack.split_off(stack.len() - n);
                    stack.push(Value::Tuple(items));
                }
                b'Q' => {
                    let id = pop(&mut stack)?;
                    stack.push(Value::Persistent(Box::new(id)));
                }
                b'R' => {
                    let args = match pop(&mut stack)? {
                        Value::Tuple(args) => args,
                        _ => return Err(unsupported("call arguments that are not a tuple".into())),
                    };
                    let callable = pop(&mut stack)?;
                    stack.push(Value::Call(Box::new(callable), args));
                }
                // An object's state (an OrderedDict's metadata): not needed.
                b'b' => {
                    pop(&mut stack)?;
                }
                b's' | b'u' => {
                    let items = if op == b's' {
                        let value = pop(&mut stack)?;
                        let key = pop(&mut stack)?;
                        vec![key, value]
                    } else {
                        pop_mark(&mut stack)?
                    };
                    let mut items = items.into_iter();
                    let pairs = std::iter::from_fn(|| Some((items.next()?, items.next()?)));
                    match stack.last_mut() {
                        Some(Value::Dict(entries)) => entries.extend(pairs),
                        // A dict built by a call (`OrderedDict()`) holds its items after
                        // the arguments, as pairs; the reader never looks at its arguments.
                        Some(Value::Call(_, entries)) => {
                            entries.extend(pairs.map(|(k, v)| Value::Tuple(vec![k, v])));
                        }
                        _ => return Err(unsupported("set item on something not a dict".into())),
                    }
                }
                b'a' => {
                    let item = pop(&mut stack)?;
                    match stack.last_mut() {
                        Some(Value::List(list)) => list.push(item),
                        _ => return Err(unsupported("append to something not a list".into())),
                    }
                }
                b'e' => {
                    let items = pop_mark(&mut stack)?;
                    match stack.last_mut() {
                        Some(Value::List(list)) => list.extend(items),
                        _ => return Err(unsupported("append to something not a list".into())),
                    }
                }
                other => return Err(unsupported(format!("pickle opcode 0x{other:02x}"))),
            }
        }
    }
}

/// The entries of a dict value, whether a literal dict or an `OrderedDict()` call.
fn entries(value: &Value) -> Vec<(&Value, &Value)> {
    match value {
        Value::Dict(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        Value::Call(_, items) => items
            .iter()
            .filter_map(|item| match item {
                Value::Tuple(pair) if pair.len() == 2 => Some((&pair[0], &pair[1])),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn as_usizes(value: &Value) -> Option<Vec<usize>> {
    match value {
        Value::Tuple(items) => items
            .iter()
            .map(|v| match v {
                Value::Int(n) => usize::try_from(*n).ok(),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Where a tensor's values are: its storage key, offset and shape.
struct TensorRef {
    key: String,
    offset: usize,
    shape: Vec<usize>,
}

fn tensor_ref(value: &Value) -> Result<Option<TensorRef>, TorchError> {
    let Value::Call(callable, args) = value else { return Ok(None) };
    match callable.as_ref() {
        Value::Global(name) if name == "torch._utils._rebuild_tensor_v2" => {}
        _ => return Ok(None),
    }
    let bad = |what: &str| TorchError::Unsupported(format!("a tensor with {what}"));
    let [storage, Value::Int(offset), shape, stride, ..] = args.as_slice() else {
        return Err(bad("unexpected arguments"));
    };
    let Value::Persistent(id) = storage else { return Err(bad("no storage")) };
    let Value::Tuple(id) = id.as_ref() else { return Err(bad("an unknown storage id")) };
    let (Some(Value::Global(kind)), Some(Value::Str(key))) = (id.get(1), id.get(2)) else {
        return Err(bad("an unknown storage id"));
    };
    if kind != "torch.FloatStorage" {
        return Err(bad(&format!("storage {kind}")));
    }
    let shape = as_usizes(shape).ok_or_else(|| bad("an unknown shape"))?;
    let stride = as_usizes(stride).ok_or_else(|| bad("an unknown stride"))?;
    // Row-major strides: each the product of the sizes after it.
    let mut expected = 1;
    for (size, step) in shape.iter().zip(&stride).rev() {
        if *size > 1 && *step != expected {
            return Err(bad("a strided layout"));
        }
        expected *= size;
    }
    let offset = usize::try_from(*offset).map_err(|_| bad("a negative offset"))?;
    Ok(Some(TensorRef { key: key.clone(), offset, shape }))
}

/// The tensors of the state dict at `path` inside the checkpoint (`path` names nested dict
/// keys, e.g. `["model_state"]`; empty for a checkpoint that is itself a state dict).
pub fn read_state_dict(bytes: &[u8], path: &[&str]) -> Result<HashMap<String, Tensor>, TorchError> {
    let mut reader = Reader { bytes, at: 0 };
    for _ in 0..3 {
        reader.pickle()?;
    }
    let object = reader.pickle()?;
    let keys = match reader.pickle()? {
        Value::List(keys) => keys,
        _ => return Err(TorchError::Unsupported("no storage list".into())),
    };
    let mut storages: HashMap<String, &[u8]> = HashMap::new();
    for key in keys {
        let Value::Str(key) = key else {
            return Err(TorchError::Unsupported("a storage key that is not text".into()));
        };
        let count = reader.take(8)?;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(count);
        let count = usize::try_from(u64::from_le_bytes(raw)).map_err(|_| TorchError::Truncated)?;
        let data = reader.take(count.checked_mul(4).ok_or(TorchError::Truncated)?)?;
        storages.insert(key, data);
    }
    let mut state = &object;
    for name in path {
        state = entries(state)
            .into_iter()
            .find(|(key, _)| matches!(key, Value::Str(k) if k == name))
            .map(|(_, value)| value)
            .ok_or_else(|| TorchError::Unsupported(format!("no {name:?} in the checkpoint")))?;
    }
    let mut tensors = HashMap::new();
    for (key, value) in entries(state) {
        let (Value::Str(name), Some(tensor)) = (key, tensor_ref(value)?) else { continue };
        let data = storages
            .get(&tensor.key)
            .ok_or_else(|| TorchError::Unsupported(format!("{name}: no storage")))?;
        let count: usize = tensor.shape.iter().product();
        let bytes = data
            .get(tensor.offset * 4..(tensor.offset + count) * 4)
            .ok_or_else(|| TorchError::Unsupported(format!("{name}: outside its storage")))?;
        let values =
            bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        tensors.insert(name.clone(), Tensor { shape: tensor.shape, values });
    }
    Ok(tensors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_checkpoint_is_an_error_not_a_panic() {
        let bytes = [0x80u8, 0x02, 0x8a, 0x0a, 0x6c];
        assert!(matches!(read_state_dict(&bytes, &[]), Err(TorchError::Truncated)));
        assert!(read_state_dict(b"not a pickle", &[]).is_err());
    }
}
