//! Writes float32 state dicts in the format `torch.save` uses (a zip holding
//! `archive/data.pkl`, a protocol-2 pickle whose tensors are
//! `torch._utils._rebuild_tensor_v2` calls on persistent storages, and one
//! `archive/data/<key>` file of raw little-endian bytes per storage), so the
//! `.pt` loading path is tested without PyTorch.

use std::io::Write;
use std::path::Path;

use zip::write::SimpleFileOptions;

/// One tensor: name, shape (PyTorch layout), values in row-major order.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// What the file's top-level object is.
pub enum Contents<'a> {
    /// `torch.save(model.state_dict(), path)`.
    StateDict(&'a [NamedTensor]),
    /// `torch.save({"epoch": n, key: state_dict, …}, path)`, the seed's full training state.
    TrainingState {
        epoch: i32,
        dicts: Vec<(&'a str, &'a [NamedTensor])>,
    },
}

#[derive(Default)]
struct Pickle {
    bytes: Vec<u8>,
    storages: Vec<Vec<u8>>,
}

impl Pickle {
    fn op(&mut self, op: u8) -> &mut Self {
        self.bytes.push(op);
        self
    }

    fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.bytes.push(b'c');
        self.bytes
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        self
    }

    fn string(&mut self, s: &str) -> &mut Self {
        self.bytes.push(b'X'); // BINUNICODE
        self.bytes
            .extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(s.as_bytes());
        self
    }

    fn int(&mut self, v: i32) -> &mut Self {
        self.bytes.push(b'J'); // BININT
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn int_tuple(&mut self, values: &[usize]) -> &mut Self {
        self.op(b'(');
        for v in values {
            self.int(*v as i32);
        }
        self.op(b't')
    }

    fn ordered_dict(&mut self) -> &mut Self {
        self.global("collections", "OrderedDict").op(b')').op(b'R')
    }

    fn tensor(&mut self, shape: &[usize], values: &[f32]) {
        let key = self.storages.len().to_string();
        self.storages
            .push(values.iter().flat_map(|v| v.to_le_bytes()).collect());
        let strides: Vec<usize> = (0..shape.len())
            .map(|i| shape[i + 1..].iter().product())
            .collect();
        self.global("torch._utils", "_rebuild_tensor_v2").op(b'(');
        // persistent id ('storage', FloatStorage, key, 'cpu', numel)
        self.op(b'(')
            .string("storage")
            .global("torch", "FloatStorage")
            .string(&key)
            .string("cpu")
            .int(values.len() as i32)
            .op(b't')
            .op(b'Q'); // BINPERSID
        self.int(0).int_tuple(shape).int_tuple(&strides).op(0x89); // NEWFALSE
        self.ordered_dict().op(b't').op(b'R');
    }

    fn state_dict(&mut self, tensors: &[NamedTensor]) {
        self.ordered_dict().op(b'(');
        for (name, shape, values) in tensors {
            self.string(name);
            self.tensor(shape, values);
        }
        self.op(b'u'); // SETITEMS
    }
}

/// Writes `contents` to `path` as `torch.save` would.
pub fn write(path: &Path, contents: Contents<'_>) {
    let mut pickle = Pickle::default();
    pickle.op(0x80).op(2); // PROTO 2
    match contents {
        Contents::StateDict(tensors) => pickle.state_dict(tensors),
        Contents::TrainingState { epoch, dicts } => {
            pickle.op(b'}').op(b'(').string("epoch").int(epoch);
            for (key, tensors) in dicts {
                pickle.string(key);
                pickle.state_dict(tensors);
            }
            pickle.op(b'u');
        }
    }
    pickle.op(b'.'); // STOP

    let file = std::fs::File::create(path).expect("create .pt");
    let mut zip = zip::ZipWriter::new(file);
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut add = |name: &str, bytes: &[u8]| {
        zip.start_file(name, stored).expect("zip entry");
        zip.write_all(bytes).expect("zip write");
    };
    add("archive/data.pkl", &pickle.bytes);
    add("archive/byteorder", b"little");
    for (key, bytes) in pickle.storages.iter().enumerate() {
        add(&format!("archive/data/{key}"), bytes);
    }
    add("archive/version", b"3\n");
    zip.finish().expect("zip finish");
}
