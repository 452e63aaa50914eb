use regex::Regex;

/// How a checkpoint's tensor names relate to a burn module's parameter paths.
///
/// Models name their fields after the checkpoint keys, so most names pass
/// through unchanged; the few that cannot (an `nn.Sequential` index such as
/// `adaLN_modulation.1.weight`, a parameter burn calls `gamma`) are listed
/// here once, in both directions, so loading and saving use one table.
/// Tensors the model deliberately does not use (a vision tower, a decoder)
/// are listed as ignored; any other surplus tensor is an error.
#[derive(Debug, Clone, Default)]
pub struct KeyMap {
    to_module: Vec<(Regex, String)>,
    to_checkpoint: Vec<(Regex, String)>,
    ignored: Vec<Regex>,
}

impl KeyMap {
    /// An identity mapping: checkpoint names are module paths.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rename: `checkpoint` (a regex over checkpoint names) becomes
    /// `module` on load; `module_pattern` becomes `checkpoint_replacement` on save.
    ///
    /// # Panics
    /// On an invalid regex: the tables are static program text.
    pub fn rename(
        mut self,
        checkpoint_pattern: &str,
        module_replacement: &str,
        module_pattern: &str,
        checkpoint_replacement: &str,
    ) -> Self {
        self.to_module
            .push((compile(checkpoint_pattern), module_replacement.to_string()));
        self.to_checkpoint
            .push((compile(module_pattern), checkpoint_replacement.to_string()));
        self
    }

    /// Checkpoint tensors matching `pattern` are skipped on load.
    ///
    /// # Panics
    /// On an invalid regex: the tables are static program text.
    pub fn ignore(mut self, pattern: &str) -> Self {
        self.ignored.push(compile(pattern));
        self
    }

    /// The module path a checkpoint tensor name maps to.
    pub fn module_path(&self, checkpoint_name: &str) -> String {
        apply(&self.to_module, checkpoint_name)
    }

    /// The checkpoint name a module parameter path is saved under.
    pub fn checkpoint_name(&self, module_path: &str) -> String {
        apply(&self.to_checkpoint, module_path)
    }

    /// Whether a checkpoint tensor is deliberately unused.
    pub fn is_ignored(&self, checkpoint_name: &str) -> bool {
        self.ignored.iter().any(|re| re.is_match(checkpoint_name))
    }
}

fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("invalid key pattern {pattern:?}: {e}"))
}

fn apply(rules: &[(Regex, String)], name: &str) -> String {
    rules.iter().fold(name.to_string(), |name, (re, to)| {
        re.replace_all(&name, to.as_str()).into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_both_ways_and_ignores() {
        let map = KeyMap::new()
            .rename(
                r"adaLN_modulation\.1\.",
                "adaLN_modulation.",
                r"adaLN_modulation\.",
                "adaLN_modulation.1.",
            )
            .ignore(r"^vision_tower\.");
        let ckpt = "blocks.3.adaLN_modulation.1.weight";
        let module = map.module_path(ckpt);
        assert_eq!(module, "blocks.3.adaLN_modulation.weight");
        assert_eq!(map.checkpoint_name(&module), ckpt);
        assert!(map.is_ignored("vision_tower.encoder.layer.0.weight"));
        assert!(!map.is_ignored("encoder.layers.0.weight"));
    }
}
