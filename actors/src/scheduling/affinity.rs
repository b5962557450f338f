//! Model affinity: which models an instance probably has loaded, from the jobs it was given.
//!
//! ComfyUI keeps the models of its last prompts in VRAM, so a job that needs the same checkpoint
//! runs faster where that checkpoint was last used. The set is bounded (most recently used first)
//! and cleared when the instance's process restarts.

use std::collections::VecDeque;

/// The models an instance was last asked to load, most recent first.
#[derive(Debug, Clone, Default)]
pub struct LoadedModels {
    capacity: usize,
    models: VecDeque<String>,
}

impl LoadedModels {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            models: VecDeque::new(),
        }
    }

    /// Notes that a job using `models` ran (or was handed) to this instance.
    pub fn record(&mut self, models: &[String]) {
        for model in models.iter().rev() {
            if let Some(at) = self.models.iter().position(|m| m == model) {
                self.models.remove(at);
            }
            self.models.push_front(model.clone());
        }
        self.models.truncate(self.capacity);
    }

    /// How many of `models` this instance has loaded.
    pub fn matches(&self, models: &[String]) -> usize {
        models.iter().filter(|m| self.models.contains(m)).count()
    }

    /// The process restarted: nothing is loaded any more.
    pub fn clear(&mut self) {
        self.models.clear();
    }

    /// Most recently used first.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.models.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn keeps_the_most_recent_models_within_its_bound() {
        let mut loaded = LoadedModels::new(3);
        loaded.record(&names(&["sdxl.safetensors", "lora-a"]));
        loaded.record(&names(&["flux.safetensors", "lora-b"]));
        assert_eq!(
            loaded.iter().collect::<Vec<_>>(),
            ["flux.safetensors", "lora-b", "sdxl.safetensors"]
        );
        assert_eq!(loaded.matches(&names(&["flux.safetensors", "lora-a"])), 1);
        loaded.record(&names(&["sdxl.safetensors"]));
        assert_eq!(loaded.iter().next(), Some("sdxl.safetensors"));
        assert_eq!(loaded.iter().count(), 3);
        loaded.clear();
        assert_eq!(loaded.matches(&names(&["sdxl.safetensors"])), 0);
    }
}
