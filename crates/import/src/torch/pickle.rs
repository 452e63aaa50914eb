//! A small, bounded pickle interpreter for what `torch.save` writes.
//!
//! It executes the opcodes of pickle protocols 2–5 that `torch.save` and
//! plain Python containers use, and knows only a fixed list of callables:
//! `collections.OrderedDict`, the tensor rebuild functions of `torch._utils`
//! and `torch._tensor`, the typed storage classes (as persistent ids), and
//! `_codecs.encode` (protocol-2 bytes). Nothing is ever imported or executed:
//! any other class or function is an error naming it, which is what makes a
//! hostile file harmless here.
//!
//! Objects live in an arena while the program runs, so that memoised
//! containers filled later (`EMPTY_DICT`, `BINPUT`, …, `SETITEMS`) are seen
//! filled wherever they are referenced, as in Python. The result is then
//! converted to a [`Value`] tree with bounded depth and size, so cycles and
//! exponential sharing ("billion laughs") are errors, not hangs.

use std::collections::HashMap;

use super::value::{DType, Dict, StorageRef, TensorRef, Value};

/// Most objects one pickle may create.
const MAX_OBJECTS: usize = 4_000_000;
/// Most values in the decoded tree (shared objects count each time).
const MAX_VALUES: usize = 4_000_000;
/// Deepest nesting of containers.
const MAX_DEPTH: usize = 64;
/// Longest `module\nname\n` line of a `GLOBAL`.
const MAX_GLOBAL_LINE: usize = 256;
/// Most dimensions of a tensor.
const MAX_DIMS: usize = 16;

type Id = usize;

/// What the pickle program failed on, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct PickleError {
    /// Byte offset of the opcode.
    pub offset: usize,
    pub reason: String,
}

impl std::fmt::Display for PickleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pickle byte {}: {}", self.offset, self.reason)
    }
}

type Result<T> = std::result::Result<T, PickleError>;

/// Objects while the program runs.
#[derive(Debug, Clone)]
enum Obj {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Id>),
    Tuple(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Global { module: String, name: String },
    Storage(StorageRef),
    Tensor(TensorRef),
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Mark,
    Object(Id),
}

/// Runs the pickle program `bytes` and returns the value it builds.
pub fn load(bytes: &[u8]) -> std::result::Result<Value, PickleError> {
    let mut machine = Machine {
        input: bytes,
        position: 0,
        opcode_at: 0,
        arena: Vec::new(),
        stack: Vec::new(),
        memo: HashMap::new(),
    };
    let root = machine.run()?;
    let mut budget = MAX_VALUES;
    machine.convert(root, 0, &mut budget)
}

struct Machine<'a> {
    input: &'a [u8],
    position: usize,
    opcode_at: usize,
    arena: Vec<Obj>,
    stack: Vec<Slot>,
    memo: HashMap<u64, Id>,
}

impl Machine<'_> {
    fn fail<T>(&self, reason: impl Into<String>) -> Result<T> {
        Err(PickleError {
            offset: self.opcode_at,
            reason: reason.into(),
        })
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .position
            .checked_add(n)
            .filter(|&e| e <= self.input.len());
        let Some(end) = end else {
            return self.fail(format!(
                "needs {n} more bytes but the pickle ends (truncated data.pkl?)"
            ));
        };
        let slice = &self.input[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn length(&mut self, bytes: usize) -> Result<usize> {
        let n = match bytes {
            1 => u64::from(self.byte()?),
            4 => u64::from(self.u32()?),
            _ => self.u64()?,
        };
        usize::try_from(n).or_else(|_| self.fail(format!("length {n} does not fit in memory")))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.input[self.position..];
        let end = rest.iter().take(MAX_GLOBAL_LINE).position(|&b| b == b'\n');
        let Some(end) = end else {
            return self.fail("a GLOBAL name is unterminated or too long");
        };
        let text = std::str::from_utf8(&rest[..end])
            .map(str::to_owned)
            .or_else(|_| self.fail("a GLOBAL name is not UTF-8"))?;
        self.position += end + 1;
        Ok(text)
    }

    fn text(&mut self, n: usize) -> Result<String> {
        let bytes = self.take(n)?.to_vec();
        String::from_utf8(bytes).or_else(|_| self.fail("a string is not valid UTF-8"))
    }

    fn alloc(&mut self, obj: Obj) -> Result<Id> {
        if self.arena.len() >= MAX_OBJECTS {
            return self.fail(format!("more than {MAX_OBJECTS} objects"));
        }
        self.arena.push(obj);
        Ok(self.arena.len() - 1)
    }

    fn push(&mut self, obj: Obj) -> Result<()> {
        let id = self.alloc(obj)?;
        self.stack.push(Slot::Object(id));
        Ok(())
    }

    fn pop(&mut self) -> Result<Id> {
        match self.stack.pop() {
            Some(Slot::Object(id)) => Ok(id),
            Some(Slot::Mark) => self.fail("found a MARK where an object was expected"),
            None => self.fail("the stack is empty"),
        }
    }

    fn top(&self) -> Result<Id> {
        match self.stack.last() {
            Some(Slot::Object(id)) => Ok(*id),
            _ => self.fail("no object on top of the stack"),
        }
    }

    /// Pops everything above the topmost MARK, and the MARK.
    fn pop_mark(&mut self) -> Result<Vec<Id>> {
        let Some(mark) = self.stack.iter().rposition(|s| matches!(s, Slot::Mark)) else {
            return self.fail("no MARK on the stack");
        };
        let items = self
            .stack
            .split_off(mark + 1)
            .into_iter()
            .map(|slot| match slot {
                Slot::Object(id) => id,
                Slot::Mark => unreachable!("the topmost MARK is at `mark`"),
            })
            .collect();
        self.stack.pop();
        Ok(items)
    }

    fn memoize(&mut self, index: u64) -> Result<()> {
        let id = self.top()?;
        if self.memo.len() >= MAX_OBJECTS {
            return self.fail("too many memo entries");
        }
        self.memo.insert(index, id);
        Ok(())
    }

    fn recall(&mut self, index: u64) -> Result<()> {
        match self.memo.get(&index) {
            Some(&id) => {
                self.stack.push(Slot::Object(id));
                Ok(())
            }
            None => self.fail(format!("memo entry {index} was never stored")),
        }
    }

    fn append(&mut self, list: Id, items: Vec<Id>) -> Result<()> {
        match &mut self.arena[list] {
            Obj::List(existing) => {
                existing.extend(items);
                Ok(())
            }
            other => {
                let kind = kind(other);
                self.fail(format!("APPEND to a {kind}, not a list"))
            }
        }
    }

    fn set_items(&mut self, dict: Id, items: Vec<Id>) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            return self.fail("SETITEMS with an odd number of keys and values");
        }
        match &mut self.arena[dict] {
            Obj::Dict(entries) => {
                entries.extend(items.chunks_exact(2).map(|kv| (kv[0], kv[1])));
                Ok(())
            }
            other => {
                let kind = kind(other);
                self.fail(format!("SETITEM on a {kind}, not a dict"))
            }
        }
    }

    fn run(&mut self) -> Result<Id> {
        loop {
            self.opcode_at = self.position;
            let op = self.byte()?;
            match op {
                0x80 => {
                    let protocol = self.byte()?;
                    if protocol > 5 {
                        return self.fail(format!("pickle protocol {protocol} is not supported"));
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME: a length hint; the data follows inline.
                }
                b'.' => return self.pop(),
                b'(' => self.stack.push(Slot::Mark),
                b'0' => {
                    self.stack.pop();
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let id = self.top()?;
                    self.stack.push(Slot::Object(id));
                }
                b'N' => self.push(Obj::None)?,
                0x88 => self.push(Obj::Bool(true))?,
                0x89 => self.push(Obj::Bool(false))?,
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Obj::Int(i64::from(v)))?;
                }
                b'K' => {
                    let v = self.byte()?;
                    self.push(Obj::Int(i64::from(v)))?;
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Obj::Int(i64::from(v)))?;
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        self.length(1)?
                    } else {
                        self.length(4)?
                    };
                    let v = self.long(n)?;
                    self.push(Obj::Int(v))?;
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                    self.push(Obj::Float(v))?;
                }
                b'X' | 0x8c | 0x8d => {
                    let width = match op {
                        0x8c => 1,
                        b'X' => 4,
                        _ => 8,
                    };
                    let n = self.length(width)?;
                    let s = self.text(n)?;
                    self.push(Obj::Str(s))?;
                }
                b'T' | b'U' => {
                    // Python 2 byte strings, read as Latin-1.
                    let n = if op == b'U' {
                        self.length(1)?
                    } else {
                        self.length(4)?
                    };
                    let s = self.take(n)?.iter().map(|&b| char::from(b)).collect();
                    self.push(Obj::Str(s))?;
                }
                b'B' | b'C' | 0x8e => {
                    let width = match op {
                        b'C' => 1,
                        b'B' => 4,
                        _ => 8,
                    };
                    let n = self.length(width)?;
                    let bytes = self.take(n)?.to_vec();
                    self.push(Obj::Bytes(bytes))?;
                }
                b')' => self.push(Obj::Tuple(Vec::new()))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Obj::Tuple(items))?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Obj::Tuple(items))?;
                }
                b']' => self.push(Obj::List(Vec::new()))?,
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Obj::List(items))?;
                }
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top()?;
                    self.append(list, vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let list = self.top()?;
                    self.append(list, items)?;
                }
                b'}' => self.push(Obj::Dict(Vec::new()))?,
                b'd' => {
                    let items = self.pop_mark()?;
                    if !items.len().is_multiple_of(2) {
                        return self.fail("DICT with an odd number of keys and values");
                    }
                    let entries = items.chunks_exact(2).map(|kv| (kv[0], kv[1])).collect();
                    self.push(Obj::Dict(entries))?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let dict = self.top()?;
                    self.set_items(dict, vec![key, value])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let dict = self.top()?;
                    self.set_items(dict, items)?;
                }
                b'q' => {
                    let i = self.byte()?;
                    self.memoize(u64::from(i))?;
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memoize(u64::from(i))?;
                }
                0x94 => {
                    let i = self.memo.len() as u64;
                    self.memoize(i)?;
                }
                b'h' => {
                    let i = self.byte()?;
                    self.recall(u64::from(i))?;
                }
                b'j' => {
                    let i = self.u32()?;
                    self.recall(u64::from(i))?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Obj::Global { module, name })?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (&self.arena[module], &self.arena[name]) {
                        (Obj::Str(m), Obj::Str(n)) => {
                            let global = Obj::Global {
                                module: m.clone(),
                                name: n.clone(),
                            };
                            self.push(global)?;
                        }
                        _ => return self.fail("STACK_GLOBAL needs two strings"),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = self.persistent(pid)?;
                    self.push(storage)?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let result = self.reduce(callable, args)?;
                    self.push(result)?;
                }
                b'b' => {
                    // BUILD: attribute state for the object below (an OrderedDict's
                    // `_metadata`, a Parameter's extra state). Nothing we read needs it.
                    self.pop()?;
                    let target = self.top()?;
                    if !matches!(self.arena[target], Obj::Dict(_) | Obj::Tensor(_)) {
                        let kind = kind(&self.arena[target]);
                        return self.fail(format!("BUILD on a {kind} is not supported"));
                    }
                }
                other => {
                    return self.fail(format!(
                        "opcode {other:#04x} is not supported (not a torch.save file?)"
                    ));
                }
            }
        }
    }

    /// A little-endian two's-complement integer of `n` bytes.
    fn long(&mut self, n: usize) -> Result<i64> {
        if n > 8 {
            return self.fail(format!("an integer of {n} bytes does not fit in 64 bits"));
        }
        let bytes = self.take(n)?;
        if bytes.is_empty() {
            return Ok(0);
        }
        let negative = bytes[n - 1] & 0x80 != 0;
        let mut buffer = if negative { [0xff; 8] } else { [0; 8] };
        buffer[..n].copy_from_slice(bytes);
        Ok(i64::from_le_bytes(buffer))
    }

    fn global_of(&self, id: Id) -> Option<(&str, &str)> {
        match &self.arena[id] {
            Obj::Global { module, name } => Some((module, name)),
            _ => None,
        }
    }

    /// `('storage', <torch.XStorage>, key, location, numel)`.
    fn persistent(&self, pid: Id) -> Result<Obj> {
        let Obj::Tuple(items) = &self.arena[pid] else {
            return self.fail("a persistent id is not a tuple");
        };
        let fields: Vec<&Obj> = items.iter().map(|&i| &self.arena[i]).collect();
        match fields.as_slice() {
            [
                Obj::Str(tag),
                class,
                Obj::Str(key),
                Obj::Str(_location),
                Obj::Int(numel),
            ] if tag == "storage" => {
                let dtype = match class {
                    Obj::Global { module, name } if module == "torch" => {
                        DType::from_storage_class(name)
                    }
                    _ => None,
                };
                let Some(dtype) = dtype else {
                    return self.fail(format!("unsupported storage type {}", describe(class)));
                };
                let key_ok = !key.is_empty()
                    && key.len() <= 64
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !key_ok {
                    return self.fail(format!("storage key {key:?} is not a plain name"));
                }
                let numel = usize::try_from(*numel)
                    .or_else(|_| self.fail(format!("storage size {numel} is negative")))?;
                Ok(Obj::Storage(StorageRef {
                    key: key.clone(),
                    dtype,
                    numel,
                }))
            }
            _ => self.fail("a persistent id is not ('storage', type, key, location, size)"),
        }
    }

    fn reduce(&self, callable: Id, args: Id) -> Result<Obj> {
        let Some((module, name)) = self.global_of(callable) else {
            let kind = kind(&self.arena[callable]);
            return self.fail(format!("REDUCE calls a {kind}, not a known function"));
        };
        let Obj::Tuple(args) = &self.arena[args] else {
            return self.fail(format!("{module}.{name} called without an argument tuple"));
        };
        match (module, name) {
            ("collections", "OrderedDict") => self.ordered_dict(args),
            ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => self.rebuild_tensor(args),
            ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
                match args.first().map(|&a| &self.arena[a]) {
                    Some(Obj::Tensor(t)) => Ok(Obj::Tensor(t.clone())),
                    _ => self.fail(format!("{name} without a tensor")),
                }
            }
            ("torch._tensor", "_rebuild_from_type_v2") => match args.as_slice() {
                [func, _type, inner, ..] => match &self.arena[*inner] {
                    Obj::Tuple(_) => self.reduce(*func, *inner),
                    _ => self.fail("_rebuild_from_type_v2 without an argument tuple"),
                },
                _ => self.fail("_rebuild_from_type_v2 with too few arguments"),
            },
            ("_codecs", "encode") => match args.as_slice() {
                [text, _encoding] => match &self.arena[*text] {
                    Obj::Str(s) => Ok(Obj::Bytes(s.chars().map(|c| c as u32 as u8).collect())),
                    _ => self.fail("_codecs.encode of a non-string"),
                },
                _ => self.fail("_codecs.encode with wrong arguments"),
            },
            _ => self.fail(format!(
                "{module}.{name} is not allowed (only tensors, numbers, strings, lists, tuples and dicts are read)"
            )),
        }
    }

    fn ordered_dict(&self, args: &[Id]) -> Result<Obj> {
        let Some(&items) = args.first() else {
            return Ok(Obj::Dict(Vec::new()));
        };
        let pairs = match &self.arena[items] {
            Obj::List(pairs) | Obj::Tuple(pairs) => pairs,
            _ => return self.fail("OrderedDict of something other than a list of pairs"),
        };
        let mut entries = Vec::with_capacity(pairs.len());
        for &pair in pairs {
            match &self.arena[pair] {
                Obj::List(kv) | Obj::Tuple(kv) if kv.len() == 2 => entries.push((kv[0], kv[1])),
                _ => return self.fail("OrderedDict item is not a (key, value) pair"),
            }
        }
        Ok(Obj::Dict(entries))
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`.
    fn rebuild_tensor(&self, args: &[Id]) -> Result<Obj> {
        let [storage, offset, size, stride, ..] = args else {
            return self.fail("a tensor rebuild with too few arguments");
        };
        let Obj::Storage(storage) = &self.arena[*storage] else {
            return self.fail("a tensor rebuild without a storage");
        };
        let offset = self.usize_of(*offset, "storage offset")?;
        let shape = self.dims(*size, "size")?;
        let stride = self.dims(*stride, "stride")?;
        if shape.len() != stride.len() {
            return self.fail(format!(
                "tensor size {shape:?} and stride {stride:?} differ in length"
            ));
        }
        let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        // The last element a view touches: offset + Σ (size − 1) · stride.
        let extent = shape.iter().zip(&stride).try_fold(offset, |acc, (&d, &s)| {
            acc.checked_add(d.saturating_sub(1).checked_mul(s)?)
        });
        let fits = match (numel, extent) {
            (Some(0), Some(_)) => offset <= storage.numel,
            (Some(_), Some(last)) => last < storage.numel,
            _ => false,
        };
        // Strides times sizes must also fit (the view's odometer walks them).
        let strides_fit = shape
            .iter()
            .zip(&stride)
            .all(|(&d, &s)| d.checked_mul(s).is_some());
        if !fits || !strides_fit {
            return self.fail(format!(
                "tensor of size {shape:?}, stride {stride:?} at offset {offset} does not fit in storage {} of {} elements",
                storage.key, storage.numel
            ));
        }
        Ok(Obj::Tensor(TensorRef {
            storage: storage.clone(),
            offset,
            shape,
            stride,
        }))
    }

    fn usize_of(&self, id: Id, what: &str) -> Result<usize> {
        match &self.arena[id] {
            Obj::Int(v) if *v >= 0 => {
                usize::try_from(*v).or_else(|_| self.fail(format!("{what} {v} is too large")))
            }
            other => self.fail(format!(
                "tensor {what} is {}, not a non-negative int",
                describe(other)
            )),
        }
    }

    fn dims(&self, id: Id, what: &str) -> Result<Vec<usize>> {
        let Obj::Tuple(items) = &self.arena[id] else {
            return self.fail(format!("tensor {what} is not a tuple"));
        };
        if items.len() > MAX_DIMS {
            return self.fail(format!("tensor {what} has more than {MAX_DIMS} dimensions"));
        }
        items.iter().map(|&i| self.usize_of(i, what)).collect()
    }

    /// The value tree of object `id`.
    fn convert(&self, id: Id, depth: usize, budget: &mut usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return self.fail(format!(
                "containers nest deeper than {MAX_DEPTH} levels (or refer to themselves)"
            ));
        }
        if *budget == 0 {
            return self.fail(format!(
                "the pickle expands to more than {MAX_VALUES} values"
            ));
        }
        *budget -= 1;
        let seq = |items: &[Id], budget: &mut usize| -> Result<Vec<Value>> {
            items
                .iter()
                .map(|&i| self.convert(i, depth + 1, budget))
                .collect()
        };
        Ok(match &self.arena[id] {
            Obj::None => Value::None,
            Obj::Bool(b) => Value::Bool(*b),
            Obj::Int(i) => Value::Int(*i),
            Obj::Float(f) => Value::Float(*f),
            Obj::Str(s) => Value::Str(s.clone()),
            Obj::Bytes(b) => Value::Bytes(b.clone()),
            Obj::List(items) => Value::List(seq(items, budget)?),
            Obj::Tuple(items) => Value::Tuple(seq(items, budget)?),
            Obj::Tensor(t) => Value::Tensor(t.clone()),
            Obj::Dict(entries) => {
                let mut dict: Vec<(Value, Value)> = Vec::with_capacity(entries.len());
                let mut positions: HashMap<Key, usize> = HashMap::new();
                for &(k, v) in entries {
                    let key = self.convert(k, depth + 1, budget)?;
                    let value = self.convert(v, depth + 1, budget)?;
                    let Some(hashable) = Key::of(&key) else {
                        return self.fail(format!("a dict key is an unhashable {}", key.kind()));
                    };
                    match positions.get(&hashable) {
                        Some(&at) => dict[at].1 = value,
                        None => {
                            positions.insert(hashable, dict.len());
                            dict.push((key, value));
                        }
                    }
                }
                Value::Dict(Dict(dict))
            }
            other @ (Obj::Global { .. } | Obj::Storage(_)) => {
                return self.fail(format!("{} cannot be a value", describe(other)));
            }
        })
    }
}

/// A hashable form of a dict key, for Python's replace-on-repeat semantics.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    None,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Key>),
}

impl Key {
    fn of(value: &Value) -> Option<Self> {
        Some(match value {
            Value::None => Self::None,
            Value::Bool(b) => Self::Bool(*b),
            Value::Int(i) => Self::Int(*i),
            Value::Float(f) => Self::Float(f.to_bits()),
            Value::Str(s) => Self::Str(s.clone()),
            Value::Bytes(b) => Self::Bytes(b.clone()),
            Value::Tuple(items) => Self::Tuple(items.iter().map(Self::of).collect::<Option<_>>()?),
            Value::List(_) | Value::Dict(_) | Value::Tensor(_) => return None,
        })
    }
}

fn kind(obj: &Obj) -> &'static str {
    match obj {
        Obj::None => "None",
        Obj::Bool(_) => "bool",
        Obj::Int(_) => "int",
        Obj::Float(_) => "float",
        Obj::Str(_) => "str",
        Obj::Bytes(_) => "bytes",
        Obj::List(_) => "list",
        Obj::Tuple(_) => "tuple",
        Obj::Dict(_) => "dict",
        Obj::Global { .. } => "class or function",
        Obj::Storage(_) => "storage",
        Obj::Tensor(_) => "tensor",
    }
}

fn describe(obj: &Obj) -> String {
    match obj {
        Obj::Global { module, name } => format!("{module}.{name}"),
        Obj::Int(i) => format!("int {i}"),
        Obj::Str(s) => format!("str {:?}", s.chars().take(40).collect::<String>()),
        other => kind(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protocol-2 header, body, STOP.
    fn program(body: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0x80, 2];
        bytes.extend_from_slice(body);
        bytes.push(b'.');
        bytes
    }

    fn short_str(s: &str) -> Vec<u8> {
        let mut bytes = vec![0x8c, s.len() as u8];
        bytes.extend_from_slice(s.as_bytes());
        bytes
    }

    #[test]
    fn reads_scalars_and_containers() {
        // {"a": [1, -2, 3.5, True, None], 7: (b"xy", "é")}
        let mut body = vec![b'}', b'('];
        body.extend(short_str("a"));
        body.extend([b']', b'(', b'K', 1, b'J']);
        body.extend((-2i32).to_le_bytes());
        body.push(b'G');
        body.extend(3.5f64.to_be_bytes());
        body.extend([0x88, b'N', b'e', b'K', 7, b'C', 2, b'x', b'y']);
        body.extend(short_str("é"));
        body.extend([0x86, b'u']);
        let value = load(&program(&body)).unwrap();
        let dict = value.as_dict().unwrap();
        assert_eq!(
            dict.get("a").unwrap().as_seq().unwrap(),
            &[
                Value::Int(1),
                Value::Int(-2),
                Value::Float(3.5),
                Value::Bool(true),
                Value::None
            ]
        );
        assert_eq!(
            dict.get_int(7),
            Some(&Value::Tuple(vec![
                Value::Bytes(b"xy".to_vec()),
                Value::Str("é".into())
            ]))
        );
    }

    #[test]
    fn memoised_containers_are_seen_filled() {
        // d = {}; memo[0] = d; d["k"] = 1; [d, memo[0]]
        let mut body = vec![b']', b'(', b'}', b'q', 0];
        body.extend(short_str("k"));
        body.extend([b'K', 1, b's', b'h', 0, b'e']);
        let value = load(&program(&body)).unwrap();
        let items = value.as_seq().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0], items[1]);
        assert_eq!(items[1].as_dict().unwrap().get("k"), Some(&Value::Int(1)));
    }

    #[test]
    fn repeated_keys_keep_the_first_position_and_last_value() {
        let mut body = vec![b'}', b'('];
        body.extend(short_str("x"));
        body.extend([b'K', 1]);
        body.extend(short_str("y"));
        body.extend([b'K', 2]);
        body.extend(short_str("x"));
        body.extend([b'K', 3, b'u']);
        let dict = load(&program(&body)).unwrap();
        let entries: Vec<String> = dict
            .as_dict()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(entries, vec!["\"x\"=3", "\"y\"=2"]);
    }

    #[test]
    fn long_integers_are_twos_complement() {
        let value = load(&program(&[0x8a, 2, 0xff, 0x7f])).unwrap();
        assert_eq!(value, Value::Int(0x7fff));
        let value = load(&program(&[0x8a, 1, 0xff])).unwrap();
        assert_eq!(value, Value::Int(-1));
        assert_eq!(load(&program(&[0x8a, 0])).unwrap(), Value::Int(0));
        let err = load(&program(&[0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1])).unwrap_err();
        assert!(err.reason.contains("64 bits"), "{err}");
    }

    #[test]
    fn arbitrary_callables_are_refused() {
        let mut body = b"cos\nsystem\n".to_vec();
        body.extend(short_str("echo hi"));
        body.extend([0x85, b'R']);
        let err = load(&program(&body)).unwrap_err();
        assert!(err.reason.contains("os.system is not allowed"), "{err}");
    }

    #[test]
    fn hostile_programs_are_errors() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("no stop", vec![0x80, 2, b'N']),
            ("truncated string", program(&[b'X', 200, 0, 0, 0, b'a'])),
            (
                "huge length",
                program(&[0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
            ),
            ("pop on empty", program(b"00")),
            ("unknown memo", program(&[b'h', 9])),
            ("append to int", program(&[b'K', 1, b'K', 2, b'a'])),
            ("odd setitems", program(&[b'}', b'(', b'K', 1, b'u'])),
            ("unhashable key", program(&[b'}', b']', b'K', 1, b's'])),
            ("bad opcode", program(&[0xff])),
            ("protocol 9", vec![0x80, 9, b'N', b'.']),
            ("global as value", program(b"cbuiltins\nint\n")),
            ("unterminated global", program(b"cbuiltins")),
        ];
        for (what, bytes) in cases {
            assert!(load(&bytes).is_err(), "{what}: accepted");
        }
    }

    #[test]
    fn self_reference_and_exponential_sharing_are_bounded() {
        // l = []; l.append(l)
        let cycle = program(&[b']', b'q', 0, b'h', 0, b'a']);
        let err = load(&cycle).unwrap_err();
        assert!(err.reason.contains("deeper"), "{err}");
        // l0 = [0]; l1 = [l0, l0]; … l40: 2^40 values once expanded.
        let mut body = vec![b']', b'K', 0, b'a', b'q', 0];
        for i in 1..=40u8 {
            body.extend([b']', b'h', i - 1, b'a', b'h', i - 1, b'a', b'q', i]);
        }
        let err = load(&program(&body)).unwrap_err();
        assert!(
            err.reason.contains("expands") || err.reason.contains("deeper"),
            "{err}"
        );
    }

    #[test]
    fn tensors_must_fit_their_storage() {
        // _rebuild_tensor_v2(('storage', torch.FloatStorage, '0', 'cpu', 6), 0, size, stride, False, OrderedDict())
        let tensor = |size: &[u8], stride: &[u8], offset: u8| {
            let mut body = b"ctorch._utils\n_rebuild_tensor_v2\n(".to_vec();
            body.push(b'(');
            body.extend(short_str("storage"));
            body.extend(b"ctorch\nFloatStorage\n");
            body.extend(short_str("0"));
            body.extend(short_str("cpu"));
            body.extend([b'K', 6, b't', b'Q', b'K', offset, b'(']);
            for &d in size {
                body.extend([b'K', d]);
            }
            body.extend([b't', b'(']);
            for &s in stride {
                body.extend([b'K', s]);
            }
            body.extend([b't', 0x89, b'}', b't', b'R']);
            load(&program(&body))
        };
        let ok = tensor(&[2, 3], &[3, 1], 0).unwrap();
        let t = ok.as_tensor().unwrap();
        assert_eq!((t.shape.clone(), t.dtype()), (vec![2, 3], DType::F32));
        assert!(tensor(&[2, 3], &[3, 1], 1).is_err(), "past the end");
        assert!(tensor(&[2, 4], &[4, 1], 0).is_err(), "too many elements");
        assert!(tensor(&[2], &[1, 1], 0).is_err(), "rank mismatch");
        assert!(tensor(&[0, 5], &[5, 1], 6).is_ok(), "empty view at the end");
    }
}
