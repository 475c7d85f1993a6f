//! The status page: an askama template holding the picture at load time; its script renders it
//! and replaces it on every `status` event from `/api/v1/events`.

use askama::Template;

use refinery_report::Status;

#[derive(Template)]
#[template(path = "status.html")]
struct Page<'a> {
    /// The status as JSON, safe inside `<script>`.
    initial: &'a str,
    revision: &'a str,
    nodes: usize,
    drifts: usize,
    /// A bearer token is in use: the "Sync now" button (`POST /api/v1/sync`) is shown.
    sync: bool,
}

/// JSON that cannot close the `<script>` element it sits in.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The page; `sync`: a bearer token is in use, so `POST /api/v1/sync` can be offered.
pub fn render(status: &Status, sync: bool) -> Result<String, askama::Error> {
    let json = serde_json::to_string(status).unwrap_or_else(|_| "{}".into());
    let initial = script_safe(&json);
    let revision: String = status
        .revision
        .in_force
        .as_deref()
        .unwrap_or("-")
        .chars()
        .take(12)
        .collect();
    Page {
        initial: &initial,
        revision: &revision,
        nodes: status.nodes.len(),
        drifts: status.nodes.iter().map(|n| n.drifts).sum(),
        sync,
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_embeds_the_status_without_closing_the_script() {
        let mut s = Status::default();
        s.revision.message = Some("</script><b>x</b>".into());
        let html = render(&s, false).expect("render");
        assert!(html.contains("id=\"initial\""));
        assert!(!html.contains("Sync now"), "no token, no sync button");
        assert!(render(&s, true).expect("render").contains("Sync now"));
        assert!(!html.contains("</script><b>"));
        assert!(html.contains("\\u003c/script\\u003e"));
    }
}
