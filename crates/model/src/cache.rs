//! A per-model cache of the tables that depend only on the token grid: the
//! 2-D RoPE rotations and the Fourier filter's DFT bases.
//!
//! Every forward on a given bucket (grid `h × w`, device) reuses the same
//! tables instead of rebuilding them in each of the 18 blocks. The cache is a
//! module field marked `#[module(skip)]` and implements [`Module`] with an
//! empty record, so it is never visited, mapped, counted, saved or loaded:
//! it is not a parameter. Clones of a model share it (the tables depend only
//! on the configuration), and `valid()` gives the inner-backend model a fresh
//! one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use burn::module::{
    AutodiffModule, Content, Devices, EmptyRecord, Module, ModuleDisplay, ModuleDisplayDefault,
    ModuleMapper, ModuleVisitor,
};
use burn::prelude::*;
use burn::tensor::backend::{AutodiffBackend, DeviceId, DeviceOps};

use crate::fourier::DftBases;
use crate::rope::RopeTable;

/// The seed caches its RoPE grids with `lru_cache(maxsize=32)`; beyond that
/// many grid sizes the cache starts over.
const MAX_GRIDS: usize = 32;

/// Everything a block needs that depends only on the image-token grid.
#[derive(Debug)]
pub(crate) struct GridTables<B: Backend> {
    /// RoPE rotations of the `h·w` image tokens.
    pub rope: RopeTable<B>,
    /// Real 2-D DFT bases for the `h × w` grid.
    pub dft: DftBases<B>,
}

type Key = (usize, usize, DeviceId);

/// Grid tables by `(h, w, device)`, shared by clones of one model.
#[derive(Clone)]
pub(crate) struct GridCache<B: Backend> {
    tables: Arc<Mutex<HashMap<Key, Arc<GridTables<B>>>>>,
}

impl<B: Backend> Default for GridCache<B> {
    fn default() -> Self {
        Self {
            tables: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl<B: Backend> GridCache<B> {
    /// The tables for an `h × w` grid on `device`, built by `build` the first
    /// time that grid is seen.
    pub fn get_or_build(
        &self,
        h: usize,
        w: usize,
        device: &Device<B>,
        build: impl FnOnce() -> GridTables<B>,
    ) -> Arc<GridTables<B>> {
        let key = (h, w, device.id());
        // A panic while building leaves no partial entry, so a poisoned lock
        // still guards a consistent map.
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = tables.get(&key) {
            return Arc::clone(found);
        }
        if tables.len() >= MAX_GRIDS {
            tables.clear();
        }
        tracing::debug!(h, w, "building DiT grid tables");
        let built = Arc::new(build());
        tables.insert(key, Arc::clone(&built));
        built
    }

    /// How many grids are cached.
    pub fn len(&self) -> usize {
        self.tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl<B: Backend> std::fmt::Debug for GridCache<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GridCache")
            .field("grids", &self.len())
            .finish()
    }
}

impl<B: Backend> Module<B> for GridCache<B> {
    type Record = EmptyRecord;

    fn collect_devices(&self, devices: Devices<B>) -> Devices<B> {
        devices
    }

    fn fork(self, _device: &Device<B>) -> Self {
        self
    }

    fn to_device(self, _device: &Device<B>) -> Self {
        // Entries are keyed by device: tables for the new device are built on demand.
        self
    }

    fn visit<V: ModuleVisitor<B>>(&self, _visitor: &mut V) {}

    fn map<M: ModuleMapper<B>>(self, _mapper: &mut M) -> Self {
        self
    }

    fn load_record(self, _record: Self::Record) -> Self {
        self
    }

    fn into_record(self) -> Self::Record {
        EmptyRecord::new()
    }
}

impl<B: AutodiffBackend> AutodiffModule<B> for GridCache<B> {
    type InnerModule = GridCache<B::InnerBackend>;

    fn valid(&self) -> Self::InnerModule {
        GridCache::default()
    }

    fn from_inner(_module: Self::InnerModule) -> Self {
        Self::default()
    }
}

impl<B: Backend> ModuleDisplayDefault for GridCache<B> {
    fn content(&self, content: Content) -> Option<Content> {
        content
            .add_single(&format!("GridCache({} grids)", self.len()))
            .optional()
    }
}

impl<B: Backend> ModuleDisplay for GridCache<B> {}
