//! Character classes of KDL 2.0 (spec §3: whitespace, newlines, identifier
//! characters and the code points a document may never contain).

/// `true` for the code points KDL 2.0 counts as newlines (CRLF is handled by the caller).
#[must_use]
pub fn is_newline(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// `true` for KDL's `unicode-space`.
#[must_use]
pub fn is_unicode_space(c: char) -> bool {
    matches!(c, '\t' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}')
}

/// `true` for code points that may not appear anywhere in a document
/// (a byte-order mark is allowed only as the very first character).
#[must_use]
pub fn is_disallowed(c: char) -> bool {
    matches!(
        c,
        '\0'..='\u{08}'
            | '\u{0E}'..='\u{1F}'
            | '\u{7F}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// `true` for characters that may appear in a bare identifier.
#[must_use]
pub fn is_identifier_char(c: char) -> bool {
    if c.is_ascii() {
        return ASCII_IDENT[c as usize];
    }
    !(is_unicode_space(c) || is_newline(c) || is_disallowed(c))
}

const fn ascii_ident_table() -> [bool; 128] {
    let mut table = [false; 128];
    let mut i = 0x21;
    while i < 0x7F {
        table[i] = true;
        i += 1;
    }
    let excluded = b"\\/(){};[]\"#=";
    let mut j = 0;
    while j < excluded.len() {
        table[excluded[j] as usize] = false;
        j += 1;
    }
    table
}

static ASCII_IDENT: [bool; 128] = ascii_ident_table();

/// Identifier strings that must be written with a `#` (keywords) and so
/// cannot be bare identifiers.
pub const RESERVED_IDENTIFIERS: &[&str] = &["true", "false", "null", "inf", "-inf", "nan"];

/// `true` when `text` can be written as a bare identifier (no quotes).
#[must_use]
pub fn is_bare_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !text.chars().all(is_identifier_char) || RESERVED_IDENTIFIERS.contains(&text) {
        return false;
    }
    // Must not look like a number: a digit first, or a sign or dot then a digit.
    if first.is_ascii_digit() {
        return false;
    }
    let second = chars.next();
    match first {
        '+' | '-' => match second {
            Some(c) if c.is_ascii_digit() => false,
            Some('.') => !chars.next().is_some_and(|c| c.is_ascii_digit()),
            _ => true,
        },
        '.' => !second.is_some_and(|c| c.is_ascii_digit()),
        _ => true,
    }
}
