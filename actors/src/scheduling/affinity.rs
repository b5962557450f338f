//! Model affinity: which models an instance probably has loaded, from the jobs it was given.
//!
//! ComfyUI keeps the models of its last prompts in VRAM, so a job that needs the same checkpoint
//! runs faster where that checkpoint was last used. What is remembered is the **model sets** of
//! the last jobs (a job's checkpoint with its LoRAs, VAE and text encoders count as one set, the
//! way a GPU keeps them together), most recent first, bounded by what a GPU really holds
//! (`loaded_models_per_instance`, 2 by default). The memory is cleared when the instance's
//! process restarts.

use std::collections::VecDeque;

/// The model sets an instance was last asked to load, most recent first.
#[derive(Debug, Clone, Default)]
pub struct LoadedModels {
    capacity: usize,
    /// Each set sorted and without duplicates, so equal sets compare equal.
    sets: VecDeque<Vec<String>>,
}

impl LoadedModels {
    /// Remembers at most `capacity` model sets.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            sets: VecDeque::new(),
        }
    }

    /// Notes that a job using `models` ran (or was handed) to this instance. A job without
    /// models changes nothing.
    pub fn record(&mut self, models: &[String]) {
        if models.is_empty() {
            return;
        }
        let mut set = models.to_vec();
        set.sort();
        set.dedup();
        if let Some(at) = self.sets.iter().position(|s| *s == set) {
            self.sets.remove(at);
        }
        self.sets.push_front(set);
        self.sets.truncate(self.capacity);
    }

    fn holds(&self, model: &String) -> bool {
        self.sets.iter().any(|set| set.binary_search(model).is_ok())
    }

    /// How many of `models` this instance has loaded.
    pub fn matches(&self, models: &[String]) -> usize {
        models.iter().filter(|m| self.holds(m)).count()
    }

    /// Whether a job needing `models` would find them all loaded here (never for a job that
    /// names no model: there is nothing to gain by moving it).
    pub fn has_all(&self, models: &[String]) -> bool {
        !models.is_empty() && models.iter().all(|m| self.holds(m))
    }

    /// The model set that recording a job with `models` would push out, if any.
    pub fn would_evict(&self, models: &[String]) -> Option<&[String]> {
        if models.is_empty() || self.sets.len() < self.capacity {
            return None;
        }
        let mut set = models.to_vec();
        set.sort();
        set.dedup();
        if self.sets.contains(&set) {
            return None;
        }
        self.sets.back().map(Vec::as_slice)
    }

    /// The model sets remembered, most recent first.
    pub fn sets(&self) -> impl Iterator<Item = &[String]> {
        self.sets.iter().map(Vec::as_slice)
    }

    /// The file `model` was removed or replaced: whatever was loaded from it is stale. Sets
    /// left empty are dropped.
    pub fn forget(&mut self, model: &str) {
        for set in &mut self.sets {
            set.retain(|m| m != model);
        }
        self.sets.retain(|set| !set.is_empty());
    }

    /// The process restarted: nothing is loaded any more.
    pub fn clear(&mut self) {
        self.sets.clear();
    }

    /// The models, most recently used first, each once.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let mut seen: Vec<&str> = Vec::new();
        for set in &self.sets {
            for model in set {
                if !seen.contains(&model.as_str()) {
                    seen.push(model);
                }
            }
        }
        seen.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_removed_or_replaced_file_no_longer_counts_as_loaded() {
        let mut loaded = LoadedModels::new(2);
        loaded.record(&names(&["sdxl.safetensors", "lora-a"]));
        loaded.record(&names(&["lora-a"]));
        loaded.forget("lora-a");
        assert_eq!(loaded.matches(&names(&["lora-a"])), 0);
        // The checkpoint stays loaded; the set that held only the LoRA is gone.
        assert!(loaded.has_all(&names(&["sdxl.safetensors"])));
        assert_eq!(loaded.sets().count(), 1);
    }

    #[test]
    fn keeps_the_model_sets_of_the_most_recent_jobs_within_its_bound() {
        let mut loaded = LoadedModels::new(2);
        loaded.record(&names(&["sdxl.safetensors", "lora-a"]));
        loaded.record(&names(&["flux.safetensors", "lora-b"]));
        assert_eq!(
            loaded.iter().collect::<Vec<_>>(),
            ["flux.safetensors", "lora-b", "lora-a", "sdxl.safetensors"]
        );
        assert_eq!(loaded.matches(&names(&["flux.safetensors", "lora-a"])), 2);
        assert!(loaded.has_all(&names(&["sdxl.safetensors", "lora-a"])));
        // The same set again moves to the front; a third set pushes out the oldest (flux).
        loaded.record(&names(&["lora-a", "sdxl.safetensors"]));
        loaded.record(&names(&["sd15.safetensors"]));
        assert!(loaded.has_all(&names(&["sdxl.safetensors"])));
        assert!(!loaded.has_all(&names(&["flux.safetensors"])));
        assert_eq!(loaded.matches(&names(&["flux.safetensors", "lora-b"])), 0);
        // Full: a new set would push out the oldest (sdxl's), a known one nothing.
        assert_eq!(
            loaded.would_evict(&names(&["pony.safetensors"])),
            Some(names(&["lora-a", "sdxl.safetensors"]).as_slice())
        );
        assert_eq!(loaded.would_evict(&names(&["sd15.safetensors"])), None);
        loaded.clear();
        assert_eq!(loaded.matches(&names(&["sdxl.safetensors"])), 0);
        assert_eq!(loaded.would_evict(&names(&["pony.safetensors"])), None);
    }

    #[test]
    fn a_job_without_models_neither_counts_nor_matches() {
        let mut loaded = LoadedModels::new(1);
        loaded.record(&names(&["sdxl.safetensors"]));
        loaded.record(&[]);
        assert!(loaded.has_all(&names(&["sdxl.safetensors"])));
        assert!(!loaded.has_all(&[]));
    }
}
