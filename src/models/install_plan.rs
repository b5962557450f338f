//! What `models install TEMPLATE…` has to do: the model files the templates' maps list
//! (`[[model]]` with `file`, `folder`, `url` and, where known, `sha256`), less those the library
//! already has.

use super::download::Download;
use super::kind::ModelKind;
use super::library::ModelLibrary;
use crate::workflow::{Template, WorkflowError};

/// The files of some templates, sorted by what has to happen to them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallPlan {
    /// Missing files with a URL.
    pub fetch: Vec<Download>,
    /// Files the library already has, as `kind/name`.
    pub present: Vec<String>,
    /// Missing files without a URL: the operator must install them, as `(template, kind/name)`.
    pub manual: Vec<(String, String)>,
}

/// Plans the install of `templates`' model files into `library`; a file listed by several
/// templates is fetched once.
pub fn plan(templates: &[&Template], library: &ModelLibrary) -> Result<InstallPlan, WorkflowError> {
    let mut out = InstallPlan::default();
    for template in templates {
        for note in &template.models {
            let kind = ModelKind::parse(&note.folder).map_err(|e| WorkflowError::Template {
                name: template.name.clone(),
                reason: format!("[[model]] {}: folder {e}", note.file),
            })?;
            let label = format!("{kind}/{}", note.file);
            let installed = library.list(Some(kind)).iter().any(|f| f.name == note.file);
            if installed {
                if !out.present.contains(&label) {
                    out.present.push(label);
                }
                continue;
            }
            match &note.url {
                Some(url) => {
                    if !out
                        .fetch
                        .iter()
                        .any(|d| d.kind == kind && d.name == note.file)
                    {
                        out.fetch.push(Download {
                            kind,
                            name: note.file.clone(),
                            url: url.clone(),
                            sha256: note.sha256.clone(),
                        });
                    }
                }
                None => out.manual.push((template.name.clone(), label)),
            }
        }
    }
    Ok(out)
}
