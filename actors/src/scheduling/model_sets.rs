//! The model lists of waiting jobs, shared: jobs from one template load the same checkpoint,
//! LoRAs and encoders, so they hold one copy of the list between them instead of one each.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

/// Prune dead lists after this many new ones.
const PRUNE_EVERY: usize = 256;

/// The lists in use.
#[derive(Debug, Default)]
pub struct ModelSets {
    lists: HashMap<Vec<String>, Weak<[String]>>,
    since_prune: usize,
}

impl ModelSets {
    /// `models` as a list shared with every other job that loads the same ones.
    pub fn share(&mut self, models: Vec<String>) -> Arc<[String]> {
        if let Some(list) = self.lists.get(&models).and_then(Weak::upgrade) {
            return list;
        }
        let list: Arc<[String]> = Arc::from(models.clone());
        self.lists.insert(models, Arc::downgrade(&list));
        self.since_prune += 1;
        if self.since_prune >= PRUNE_EVERY {
            self.since_prune = 0;
            self.lists.retain(|_, list| list.strong_count() > 0);
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_lists_are_one_list_while_a_job_holds_it() {
        let mut sets = ModelSets::default();
        let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let a = sets.share(list(&["sdxl.safetensors", "detail.safetensors"]));
        let b = sets.share(list(&["sdxl.safetensors", "detail.safetensors"]));
        let c = sets.share(list(&["flux.safetensors"]));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(&*a, ["sdxl.safetensors", "detail.safetensors"]);
    }
}
