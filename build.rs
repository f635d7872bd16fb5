//! Minifies the widget's stylesheets into `OUT_DIR/widget.css` (video) and
//! `OUT_DIR/widget_chat.css` (video + chat). The CSS ships inside the wasm, so every
//! comment and indent is downloaded: this keeps the sources readable and the download
//! small. Only whitespace and comments go; quoted strings (the icons' data URLs) are
//! copied untouched, and spaces that can carry meaning (selectors' descendant
//! combinator, `calc(a + b)`, `16 / 9`) are kept as one space.

use std::path::Path;

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let widget = read("src/ui/widget.css");
    let chat = read("src/ui/chat.css");
    write(&out, "widget.css", &minify(&widget));
    write(&out, "widget_chat.css", &minify(&(widget + &chat)));
}

fn read(path: &str) -> String {
    println!("cargo::rerun-if-changed={path}");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn write(dir: &str, name: &str, css: &str) {
    std::fs::write(Path::new(dir).join(name), css).unwrap_or_else(|e| panic!("{name}: {e}"));
}

/// Drops comments, collapses whitespace to one space, and removes it where CSS syntax
/// makes it meaningless: around `{ } ; ,` and after `:` (declarations, media
/// features; the stylesheets never write `a :hover`), and the `;` before a `}`.
fn minify(css: &str) -> String {
    let mut out = String::with_capacity(css.len());
    let mut chars = css.chars().peekable();
    let mut space = false;
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
                space = true;
            }
            c if c.is_whitespace() => space = true,
            '"' | '\'' => {
                flush_space(&mut out, &mut space);
                out.push(c);
                for q in chars.by_ref() {
                    out.push(q);
                    if q == c {
                        break;
                    }
                }
            }
            '{' | '}' | ';' | ',' => {
                space = false;
                if c == '}' && out.ends_with(';') {
                    out.pop();
                }
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
            }
            ':' => {
                flush_space(&mut out, &mut space);
                out.push(c);
                // Only in a declaration or a media feature, never in a selector, is
                // `:` followed by a space.
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
            }
            c => {
                flush_space(&mut out, &mut space);
                out.push(c);
            }
        }
    }
    out.trim().to_owned()
}

/// Writes a pending space unless it sits at the start or next to punctuation that
/// needs none.
fn flush_space(out: &mut String, space: &mut bool) {
    if std::mem::take(space) && !out.is_empty() && !out.ends_with(['{', '}', ';', ',', ':']) {
        out.push(' ');
    }
}
