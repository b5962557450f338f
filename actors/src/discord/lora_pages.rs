//! `/loras`: every LoRA the instances have, one page at a time, with Previous/Next buttons
//! whose `custom_id` names the page (so they keep working after a restart).

use super::custom_id::ButtonAction;
use super::message::{Button, ButtonStyle, ChatMessage, clip};

/// Longest name shown in full.
const NAME_WIDTH: usize = 90;

/// Page `page` (0-based, clamped to the last) of `names`.
pub fn lora_page(names: &[String], page: usize, page_size: usize) -> ChatMessage {
    let page_size = page_size.max(1);
    if names.is_empty() {
        return ChatMessage::private(
            "No LoRA is installed on the instances (ComfyUI's `models/loras` folder is empty).",
        );
    }
    let pages = names.len().div_ceil(page_size);
    let page = page.min(pages - 1);
    let mut text = format!("**LoRAs** ({}) · page {} of {pages}", names.len(), page + 1);
    for name in names.iter().skip(page * page_size).take(page_size) {
        text.push_str(&format!(
            "\n`{}`",
            clip(&name.replace('`', "'"), NAME_WIDTH)
        ));
    }
    let mut message = ChatMessage::private(text);
    if pages > 1 {
        let button = |label: &str, target: usize, disabled: bool| {
            let id = ButtonAction::LoraPage { page: target }
                .encode()
                .unwrap_or_default();
            Button {
                disabled,
                ..Button::new(label, id, ButtonStyle::Secondary)
            }
        };
        let previous = if page == 0 { pages } else { page - 1 };
        message.buttons = vec![
            button("◀ Previous", previous, page == 0),
            button("Next ▶", page + 1, page + 1 >= pages),
        ];
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("lora_{i:03}.safetensors")).collect()
    }

    #[test]
    fn pages_show_their_slice_and_buttons_that_lead_on() {
        let all = names(45);
        let first = lora_page(&all, 0, 20);
        assert!(first.content.starts_with("**LoRAs** (45) · page 1 of 3"));
        assert!(first.content.contains("lora_000") && first.content.contains("lora_019"));
        assert!(!first.content.contains("lora_020"));
        assert!(first.buttons[0].disabled && !first.buttons[1].disabled);
        assert_eq!(
            ButtonAction::decode(&first.buttons[1].custom_id),
            Ok(ButtonAction::LoraPage { page: 1 })
        );
        let last = lora_page(&all, 7, 20);
        assert!(last.content.contains("page 3 of 3") && last.content.contains("lora_044"));
        assert!(!last.buttons[0].disabled && last.buttons[1].disabled);
        assert_ne!(last.buttons[0].custom_id, last.buttons[1].custom_id);
        assert!(last.content.chars().count() <= 2000);
    }

    #[test]
    fn one_page_has_no_buttons_and_none_says_so() {
        assert!(lora_page(&names(3), 0, 20).buttons.is_empty());
        assert!(lora_page(&[], 0, 20).content.contains("No LoRA"));
    }
}
