//! Shortens the names the wasm and its JS glue share. wasm-bindgen names every import
//! `__wbg_<name>_<16 hex digits>` and some exports `..._invoke__h<16 hex digits>`; the
//! widget has about 190 of them, each written once in the wasm and once in the glue,
//! and the hex digits do not compress: about 3 KB of the brotli download. They are
//! renamed to one or two letters in both files.
//!
//! The glue is edited only where wasm-bindgen writes these names: import keys
//! (`name: function`), the import object's module key (`"./x_bg.js": import0`) and
//! export uses (`wasm.name`). Every name must be found where expected, and nowhere
//! else, or the build stops: a new wasm-bindgen that writes its glue differently
//! fails `cargo xtask dist` instead of shipping a broken widget.
//!
//! - Each import is keyed exactly once, and named nowhere else.
//! - An export the glue names is used as `wasm.name` at least once (so not only as
//!   `wasm["name"]` or destructured), and never as another object's member
//!   (`instance.exports.name`). The glue may also name it bare or in a string:
//!   wasm-bindgen wraps an export in a JS function of the same name
//!   (`function mount() { wasm.mount() }`). An export the glue never
//!   names (`__abort_handler`, a global the wasm keeps for itself) is renamed all the
//!   same: nothing in the glue reaches it.

use anyhow::{bail, ensure, Context, Result};
use std::collections::HashMap;

/// Renames imports and exports of `wasm` (a wasm-bindgen output) and their uses in
/// `js` (its glue, before minification). Returns the new wasm and glue.
pub(crate) fn shorten(wasm: &[u8], js: &str) -> Result<(Vec<u8>, String)> {
    ensure!(
        wasm.len() >= 8 && wasm[..4] == *b"\0asm",
        "not a wasm module"
    );
    let mut out = wasm[..8].to_vec();
    let mut pos = 8;
    let mut imports = HashMap::new();
    let mut exports = HashMap::new();
    let mut module = None;
    while pos < wasm.len() {
        let id = wasm[pos];
        pos += 1;
        let size = leb(wasm, &mut pos)? as usize;
        let body = wasm
            .get(pos..pos + size)
            .context("section past the end of the module")?;
        pos += size;
        let body = match id {
            2 => rename_imports(body, &mut imports, &mut module)?,
            7 => rename_exports(body, &mut exports)?,
            _ => body.to_vec(),
        };
        out.push(id);
        put_leb(&mut out, body.len() as u64);
        out.extend_from_slice(&body);
    }
    let module = module.context("the wasm imports nothing")?;
    let js = rewrite_js(js, &module, &imports, &exports)?;
    Ok((out, js))
}

/// `a`..`z`, `A`..`Z`, then two letters; never a JS keyword.
fn short_name(mut n: usize) -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut name = Vec::new();
    loop {
        name.push(LETTERS[n % LETTERS.len()]);
        n /= LETTERS.len();
        if n == 0 {
            break;
        }
        n -= 1;
    }
    String::from_utf8(name).expect("ASCII")
}

/// Hands out short names in order, skipping the ones that are JS keywords.
#[derive(Default)]
struct Namer(usize);

impl Namer {
    fn next(&mut self) -> String {
        loop {
            let name = short_name(self.0);
            self.0 += 1;
            if !matches!(name.as_str(), "do" | "if" | "in") {
                return name;
            }
        }
    }
}

fn rename_imports(
    body: &[u8],
    names: &mut HashMap<String, String>,
    module: &mut Option<String>,
) -> Result<Vec<u8>> {
    let mut pos = 0;
    let count = leb(body, &mut pos)?;
    let mut out = Vec::new();
    let mut namer = Namer::default();
    put_leb(&mut out, count);
    for _ in 0..count {
        let m = name(body, &mut pos)?;
        let field = name(body, &mut pos)?;
        match module {
            None => *module = Some(m.to_owned()),
            Some(first) => ensure!(first == m, "imports from two modules: {first}, {m}"),
        }
        let start = pos;
        skip_import_desc(body, &mut pos)?;
        let new = namer.next();
        ensure!(
            names.insert(field.to_owned(), new.clone()).is_none(),
            "import {field} twice"
        );
        put_name(&mut out, "a");
        put_name(&mut out, &new);
        out.extend_from_slice(&body[start..pos]);
    }
    ensure!(pos == body.len(), "trailing bytes in the import section");
    Ok(out)
}

fn rename_exports(body: &[u8], names: &mut HashMap<String, String>) -> Result<Vec<u8>> {
    let mut pos = 0;
    let count = leb(body, &mut pos)?;
    let mut out = Vec::new();
    let mut namer = Namer::default();
    put_leb(&mut out, count);
    for _ in 0..count {
        let field = name(body, &mut pos)?;
        let start = pos;
        pos += 1; // kind
        leb(body, &mut pos)?; // index
        let new = namer.next();
        names.insert(field.to_owned(), new.clone());
        put_name(&mut out, &new);
        out.extend_from_slice(body.get(start..pos).context("export past the end")?);
    }
    ensure!(pos == body.len(), "trailing bytes in the export section");
    Ok(out)
}

fn skip_import_desc(body: &[u8], pos: &mut usize) -> Result<()> {
    let kind = *body.get(*pos).context("import past the end")?;
    *pos += 1;
    match kind {
        // function: type index
        0 => {
            leb(body, pos)?;
        }
        // table: reference type, then limits
        1 => {
            *pos += 1;
            limits(body, pos)?;
        }
        // memory: limits
        2 => limits(body, pos)?,
        // global: value type, mutability
        3 => *pos += 2,
        // tag: attribute, type index
        4 => {
            *pos += 1;
            leb(body, pos)?;
        }
        k => bail!("unknown import kind {k}"),
    }
    Ok(())
}

fn limits(body: &[u8], pos: &mut usize) -> Result<()> {
    let flags = *body.get(*pos).context("limits past the end")?;
    *pos += 1;
    leb(body, pos)?;
    if flags & 1 != 0 {
        leb(body, pos)?;
    }
    Ok(())
}

fn leb(data: &[u8], pos: &mut usize) -> Result<u64> {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let byte = *data.get(*pos).context("LEB128 past the end")?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
        ensure!(shift < 64, "LEB128 too long");
    }
}

fn put_leb(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn name<'a>(data: &'a [u8], pos: &mut usize) -> Result<&'a str> {
    let len = leb(data, pos)? as usize;
    let bytes = data.get(*pos..*pos + len).context("name past the end")?;
    *pos += len;
    Ok(std::str::from_utf8(bytes)?)
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    put_leb(out, name.len() as u64);
    out.extend_from_slice(name.as_bytes());
}

/// Renames import keys, the module key and `wasm.<export>` in the glue, checking that
/// each name is used exactly as expected.
fn rewrite_js(
    js: &str,
    module: &str,
    imports: &HashMap<String, String>,
    exports: &HashMap<String, String>,
) -> Result<String> {
    let module_key = format!("\"{module}\":");
    ensure!(
        js.matches(&module_key).count() == 1,
        "the glue does not key its imports by {module_key}"
    );
    let js = js.replacen(&module_key, "a:", 1);
    let mut out = String::with_capacity(js.len());
    let mut import_uses: HashMap<&str, usize> = HashMap::new();
    let mut export_uses: HashMap<&str, usize> = HashMap::new();
    let mut export_mentions: HashMap<&str, usize> = HashMap::new();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let mut rest = js.as_str();
    while let Some(start) = rest.find(ident) {
        out.push_str(&rest[..start]);
        let len = rest[start..]
            .find(|c| !ident(c))
            .unwrap_or(rest.len() - start);
        let token = &rest[start..start + len];
        let after = &rest[start + len..];
        let member_of_wasm = out.ends_with("wasm.");
        let is_key = after.trim_start().starts_with(':') && !member_of_wasm;
        match (imports.get(token), exports.get(token)) {
            (Some(new), _) if is_key => {
                *import_uses.entry(token).or_default() += 1;
                out.push_str(new);
            }
            (_, Some(new)) if member_of_wasm => {
                *export_uses.entry(token).or_default() += 1;
                out.push_str(new);
            }
            (Some(_), _) => bail!("the glue uses import {token} where it is not a key"),
            (_, Some(_)) if out.ends_with('.') => bail!(
                "the glue reaches export {token} other than as wasm.{token}: {}",
                context(&out, after)
            ),
            (_, Some(_)) => {
                // The glue's own functions may share a name with an export (`mount`).
                *export_mentions.entry(token).or_default() += 1;
                out.push_str(token);
            }
            _ => out.push_str(token),
        }
        rest = after;
    }
    out.push_str(rest);
    for name in imports.keys() {
        let uses = import_uses.get(name.as_str()).copied().unwrap_or(0);
        ensure!(uses == 1, "import {name} is keyed {uses} times in the glue");
    }
    for (name, mentions) in export_mentions {
        ensure!(
            export_uses.contains_key(name),
            "the glue names export {name} {mentions} times but never as wasm.{name}: \
             it reaches it some other way, which the renaming would break"
        );
    }
    Ok(out)
}

/// Up to 40 characters either side of the current position, for an error message.
fn context(before: &str, after: &str) -> String {
    let start = before.char_indices().rev().nth(39).map_or(0, |(i, _)| i);
    let end = after.char_indices().nth(40).map_or(after.len(), |(i, _)| i);
    format!("...{}<here>{}...", &before[start..], &after[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module importing two functions and a memory from one module, exporting two.
    fn module() -> Vec<u8> {
        let mut imports = Vec::new();
        put_leb(&mut imports, 3);
        for (field, desc) in [
            ("__wbg_alert_0123456789abcdef", &[0u8, 0][..]),
            ("__wbindgen_init_externref_table", &[0, 1]),
            ("mem", &[2, 1, 1, 17]),
        ] {
            put_name(&mut imports, "./x_bg.js");
            put_name(&mut imports, field);
            imports.extend_from_slice(desc);
        }
        let mut exports = Vec::new();
        put_leb(&mut exports, 2);
        for (field, index) in [("memory", 0u8), ("greet", 2)] {
            put_name(&mut exports, field);
            exports.extend_from_slice(&[if field == "memory" { 2 } else { 0 }, index]);
        }
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        for (id, body) in [(2u8, imports), (7, exports)] {
            wasm.push(id);
            put_leb(&mut wasm, body.len() as u64);
            wasm.extend_from_slice(&body);
        }
        wasm
    }

    const GLUE: &str = r#"function imports() {
    const import0 = {
        __wbg_alert_0123456789abcdef: function(a) { alert(a); },
        __wbindgen_init_externref_table: function() { wasm.memory; },
        mem: function() {},
    };
    return { "./x_bg.js": import0 };
}
export function greet() { wasm.greet(); return "greet"; }"#;

    #[test]
    fn imports_and_exports_get_short_names_in_both_files() {
        let (wasm, js) = shorten(&module(), GLUE).unwrap();
        assert!(js.contains("a: function(a) { alert(a); }"), "{js}");
        assert!(js.contains("b: function() { wasm.a; }"), "{js}");
        assert!(js.contains("return { a: import0 }"), "{js}");
        // The exported JS function keeps its name; only the wasm export is renamed.
        assert!(js.contains("export function greet() { wasm.b(); return \"greet\"; }"));
        // The new wasm: module "a", imports a b c, exports a b, descriptions intact.
        let mut expected = b"\0asm\x01\0\0\0\x02\x15\x03".to_vec();
        expected.extend_from_slice(b"\x01a\x01a\0\0\x01a\x01b\0\x01\x01a\x01c\x02\x01\x01\x11");
        expected.extend_from_slice(b"\x07\x09\x02\x01a\x02\0\x01b\0\x02");
        assert_eq!(wasm, expected);
    }

    #[test]
    fn a_name_used_elsewhere_stops_the_build() {
        let glue = GLUE.replace("alert(a);", "__wbg_alert_0123456789abcdef(a);");
        assert!(shorten(&module(), &glue).is_err());
    }

    #[test]
    fn an_export_reached_through_another_object_stops_the_build() {
        let glue = GLUE.replace("wasm.greet();", "instance.exports.greet();");
        let err = shorten(&module(), &glue).unwrap_err().to_string();
        assert!(err.contains("export greet"), "{err}");
    }

    #[test]
    fn an_export_reached_by_a_string_key_stops_the_build() {
        let glue = GLUE.replace("wasm.greet();", "wasm[\"greet\"]();");
        let err = shorten(&module(), &glue).unwrap_err().to_string();
        assert!(err.contains("export greet"), "{err}");
    }

    #[test]
    fn an_export_named_but_never_used_as_wasm_member_stops_the_build() {
        // Destructured: `greet` would be undefined once the export is renamed.
        let glue = GLUE.replace(
            "export function greet() { wasm.greet(); return \"greet\"; }",
            "const { greet } = wasm;\nexport { greet };",
        );
        let err = shorten(&module(), &glue).unwrap_err().to_string();
        assert!(err.contains("never as wasm.greet"), "{err}");
    }

    #[test]
    fn an_export_the_glue_never_names_is_renamed_and_accepted() {
        let glue = GLUE.replace(
            "export function greet() { wasm.greet(); return \"greet\"; }",
            "export function hello() {}",
        );
        let (wasm, js) = shorten(&module(), &glue).unwrap();
        assert!(js.ends_with("export function hello() {}"), "{js}");
        assert!(
            wasm.ends_with(b"\x01b\0\x02"),
            "greet is exported as b: {wasm:?}"
        );
    }

    #[test]
    fn short_names_are_unique_and_skip_keywords() {
        let mut namer = Namer::default();
        let names: Vec<String> = (0..2000).map(|_| namer.next()).collect();
        assert_eq!(&names[..3], ["a", "b", "c"]);
        assert_eq!(names[52], "aa");
        assert!(!names.iter().any(|n| n == "do" || n == "if" || n == "in"));
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
    }
}
