//! The built-in detectors: for each, its patterns (no look-around: boundaries are `(?-u:\b)` or checked
//! on the neighbouring bytes by the validator), the literals that must occur for any of them to match
//! (the prefilter), and the validator that turns a regex candidate into a finding.

use std::net::{Ipv4Addr, Ipv6Addr};

/// A built-in detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// E-mail addresses.
    Email,
    /// NANP numbers and `+`-prefixed international numbers.
    Phone,
    /// Payment card numbers with a known issuer prefix and a valid Luhn check digit.
    CreditCard,
    /// IBANs (upper case, optionally in groups of four) with a valid mod-97 checksum.
    Iban,
    /// Dotted-quad IPv4 addresses.
    Ipv4,
    /// IPv6 addresses.
    Ipv6,
    /// US social security numbers (`123-45-6789` or with spaces) that pass the SSA's rules.
    UsSsn,
    /// API keys and tokens of common providers, bearer/basic credentials, JWTs, PEM private keys.
    Secret,
}

impl Builtin {
    /// Every built-in detector; the order is the match priority at equal start.
    pub const ALL: [Builtin; 8] = [
        Builtin::Secret,
        Builtin::Email,
        Builtin::Iban,
        Builtin::CreditCard,
        Builtin::UsSsn,
        Builtin::Phone,
        Builtin::Ipv6,
        Builtin::Ipv4,
    ];

    /// The name used in config, markers and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Email => "email",
            Builtin::Phone => "phone",
            Builtin::CreditCard => "credit_card",
            Builtin::Iban => "iban",
            Builtin::Ipv4 => "ipv4",
            Builtin::Ipv6 => "ipv6",
            Builtin::UsSsn => "us_ssn",
            Builtin::Secret => "secret",
        }
    }

    /// The detector of a config name.
    pub fn from_name(name: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The names of all built-in detectors, for error messages.
    pub fn names() -> String {
        Builtin::ALL.map(Builtin::name).join(", ")
    }

    /// The regexes (syntax: ASCII, no Unicode classes).
    pub fn patterns(self) -> &'static [&'static str] {
        match self {
            Builtin::Email => &[r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}"],
            Builtin::Phone => &[
                // NANP: optional +1, area code and exchange start with 2-9.
                r"(?:\+?1[ .\-]?)?(?:\([2-9][0-9]{2}\)|[2-9][0-9]{2})[ .\-]?[2-9][0-9]{2}[ .\-]?[0-9]{4}",
                // International with a leading +: 8 to 15 digits, optionally grouped.
                r"\+[1-9][0-9]{0,2}(?:[ .\-]?\(?[0-9]{1,5}\)?){2,6}",
            ],
            Builtin::CreditCard => &[r"(?-u:\b)[0-9](?:[ \-]?[0-9]){12,18}(?-u:\b)"],
            Builtin::Iban => &[r"(?-u:\b)[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]){11,30}(?-u:\b)"],
            Builtin::Ipv4 => &[r"(?-u:\b)(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?-u:\b)"],
            Builtin::Ipv6 => &[r"(?:[0-9A-Fa-f]{1,4}:|:){1,7}(?:[0-9A-Fa-f]{1,4}|:)(?:(?:\.[0-9]{1,3}){3})?"],
            Builtin::UsSsn => {
                &[r"(?-u:\b)[0-9]{3}-[0-9]{2}-[0-9]{4}(?-u:\b)", r"(?-u:\b)[0-9]{3} [0-9]{2} [0-9]{4}(?-u:\b)"]
            }
            Builtin::Secret => SECRET_PATTERNS,
        }
    }

    /// What a text must contain for this detector to match in it (the prefilter).
    pub fn gate(self) -> Gate {
        const NONE: Gate = Gate { literals: &[], digits: usize::MAX, dots: 0, hex_colons: usize::MAX };
        match self {
            Builtin::Email => Gate { literals: &["@"], ..NONE },
            Builtin::Secret => Gate { literals: SECRET_LITERALS, ..NONE },
            // Compressed forms contain `::`; the full form has seven colons between hex digits
            // (six with an embedded IPv4 address).
            Builtin::Ipv6 => Gate { literals: &["::"], hex_colons: 6, ..NONE },
            Builtin::Ipv4 => Gate { digits: 4, dots: 3, ..NONE },
            Builtin::Iban | Builtin::Phone => Gate { digits: 8, ..NONE },
            Builtin::UsSsn => Gate { digits: 9, ..NONE },
            Builtin::CreditCard => Gate { digits: 13, ..NONE },
        }
    }

    /// Which prefilter group the detector's patterns are compiled into: detectors gated by the same
    /// kind of evidence share one multi-pattern regex.
    pub fn group(self) -> usize {
        match self {
            Builtin::Email | Builtin::Secret => 0,
            Builtin::Ipv6 => 1,
            _ => 2,
        }
    }

    /// Checks a candidate `text[start..end]`: `Some(end)` (possibly shortened) for a finding.
    pub fn validate(self, text: &str, start: usize, end: usize) -> Option<usize> {
        let b = text.as_bytes();
        let candidate = &text[start..end];
        match self {
            Builtin::Email => valid_email(candidate).then_some(end),
            Builtin::Phone => {
                let digits = candidate.bytes().filter(u8::is_ascii_digit).count();
                let min = if candidate.starts_with('+') { 8 } else { 10 };
                let isolated = !before(b, start).is_some_and(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
                    && !after(b, end).is_some_and(|c| c.is_ascii_alphanumeric());
                (isolated && (min..=15).contains(&digits)).then_some(end)
            }
            Builtin::CreditCard => valid_card(candidate).map(|len| start + len),
            Builtin::Iban => valid_iban(candidate).map(|len| start + len),
            Builtin::Ipv4 => {
                // Not a part of a longer dotted version (`1.2.3.4.5`).
                let dotted = |c: Option<u8>, d: Option<u8>| c == Some(b'.') && d.is_some_and(|d| d.is_ascii_digit());
                let inside = dotted(before(b, start), start.checked_sub(2).map(|i| b[i]))
                    || dotted(after(b, end), b.get(end + 1).copied());
                (!inside && candidate.parse::<Ipv4Addr>().is_ok()).then_some(end)
            }
            Builtin::Ipv6 => {
                let isolated = !before(b, start).is_some_and(|c| c.is_ascii_alphanumeric() || c == b':')
                    && !after(b, end).is_some_and(|c| c.is_ascii_alphanumeric() || c == b':');
                (isolated && valid_ipv6(candidate)).then_some(end)
            }
            Builtin::UsSsn => valid_ssn(candidate).then_some(end),
            Builtin::Secret => Some(end),
        }
    }
}

/// The prefilter of a detector: it can only match a text that contains one of `literals`, or at
/// least `digits` ASCII digits and `dots` dots, or `hex_colons` colons between hex digits.
#[derive(Debug, Clone, Copy)]
pub struct Gate {
    pub literals: &'static [&'static str],
    pub digits: usize,
    pub dots: usize,
    pub hex_colons: usize,
}

/// API keys and tokens; each starts with a word boundary so `task-…` is not `sk-…`.
const SECRET_PATTERNS: &[&str] = &[
    // PEM private keys, up to the END line (or, cut off, the whole base64 block after BEGIN).
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:[\x00-\xFF]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|[A-Za-z0-9+/=\s]*)",
    // Anthropic before OpenAI: both start with `sk-`.
    r"(?-u:\b)sk-ant-[A-Za-z0-9_\-]{20,}",
    r"(?-u:\b)sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}",
    // Stripe secret, publishable and restricted keys; webhook secrets.
    r"(?-u:\b)(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{10,}",
    r"(?-u:\b)whsec_[A-Za-z0-9]{20,}",
    // AWS access key ids.
    r"(?-u:\b)(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}(?-u:\b)",
    // GitHub tokens, GitLab personal access tokens.
    r"(?-u:\b)gh[pousr]_[A-Za-z0-9]{36,}",
    r"(?-u:\b)github_pat_[A-Za-z0-9_]{22,}",
    r"(?-u:\b)glpat-[A-Za-z0-9_\-]{20,}",
    // Slack tokens and webhooks.
    r"(?-u:\b)xox[abposre]-[A-Za-z0-9\-]{10,}",
    r"https://hooks\.slack\.com/services/[A-Za-z0-9/_]+",
    // Google API keys, Hugging Face, npm, SendGrid.
    r"(?-u:\b)AIza[0-9A-Za-z_\-]{35}",
    r"(?-u:\b)hf_[A-Za-z0-9]{30,}",
    r"(?-u:\b)npm_[A-Za-z0-9]{36}",
    r"(?-u:\b)SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}",
    // JSON web tokens.
    r"(?-u:\b)eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",
    // Credentials in Authorization-style values.
    r"(?-u:\b)[Bb]earer[ \t]+[A-Za-z0-9._~+/=\-]{16,}",
    r"(?-u:\b)Basic[ \t]+[A-Za-z0-9+/]{16,}={0,2}",
];

/// One of these occurs in every [`SECRET_PATTERNS`] match.
const SECRET_LITERALS: &[&str] = &[
    "-----BEGIN ",
    "sk-",
    "sk_",
    "pk_",
    "rk_",
    "whsec_",
    "AKIA",
    "ASIA",
    "AGPA",
    "AIDA",
    "AROA",
    "ANPA",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xox",
    "hooks.slack.com",
    "AIza",
    "hf_",
    "npm_",
    "SG.",
    "eyJ",
    "Bearer",
    "bearer",
    "Basic",
];

fn before(b: &[u8], i: usize) -> Option<u8> {
    i.checked_sub(1).map(|i| b[i])
}

fn after(b: &[u8], i: usize) -> Option<u8> {
    b.get(i).copied()
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && domain.split('.').all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'))
}

/// The Luhn check over ASCII digits.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 { if d > 4 { d * 2 - 9 } else { d * 2 } } else { d }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Whether `digits` start with a payment card issuer prefix valid for their length.
fn card_prefix(digits: &[u8]) -> bool {
    let n = digits.len();
    let p = |k: usize| std::str::from_utf8(&digits[..k]).ok().and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
    match digits[0] {
        b'4' => matches!(n, 13 | 16 | 19),                // Visa
        b'5' => (51..=55).contains(&p(2)) && n == 16,     // Mastercard
        b'2' => (2221..=2720).contains(&p(4)) && n == 16, // Mastercard 2-series
        b'3' => {
            matches!(p(2), 34 | 37) && n == 15
                || (3528..=3589).contains(&p(4)) && n >= 16
                || matches!(p(2), 30 | 36 | 38 | 39) && n >= 14
        } // Amex, JCB, Diners
        b'6' => p(4) == 6011 || p(2) == 65 || (644..=649).contains(&p(3)) || p(2) == 62, // Discover, UnionPay
        _ => false,
    }
}

/// A card number at the start of `s` (digits with optional single spaces or dashes): the byte length
/// of the longest prefix ending at a digit group boundary that is a valid card number.
fn valid_card(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let ends: Vec<usize> = (0..b.len()).filter(|&i| b[i].is_ascii_digit()).collect();
    let digits: Vec<u8> = ends.iter().map(|&i| b[i]).collect();
    if digits.iter().all(|&d| d == digits[0]) {
        return None;
    }
    (13..=digits.len().min(19)).rev().find_map(|n| {
        let end = ends[n - 1] + 1;
        let at_boundary = b.get(end).is_none_or(|c| !c.is_ascii_digit());
        (at_boundary && card_prefix(&digits[..n]) && luhn(&digits[..n])).then_some(end)
    })
}

/// IBAN lengths by country (ISO 13616 registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// The ISO 7064 mod-97 check of an IBAN's characters (upper-case letters and digits).
pub fn iban_mod97(chars: &[u8]) -> bool {
    let rearranged = chars[4..].iter().chain(&chars[..4]);
    let mut rem = 0u32;
    for &c in rearranged {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

/// An IBAN at the start of `s`: its byte length (the country's length decides where it ends, so a
/// following word in capitals is not taken in).
fn valid_iban(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let positions: Vec<usize> = (0..b.len()).filter(|&i| b[i] != b' ').collect();
    let chars: Vec<u8> = positions.iter().map(|&i| b[i]).collect();
    let lengths: Vec<usize> = match IBAN_LENGTHS.iter().find(|(c, _)| c.as_bytes() == &chars[..2]) {
        Some(&(_, n)) => vec![n],
        None => (15..=chars.len().min(34)).rev().collect(),
    };
    lengths.into_iter().filter(|&n| n <= chars.len()).find_map(|n| {
        let end = positions[n - 1] + 1;
        let at_boundary = b.get(end).is_none_or(|c| !c.is_ascii_alphanumeric());
        (at_boundary && iban_mod97(&chars[..n])).then_some(end)
    })
}

fn valid_ipv6(s: &str) -> bool {
    let Ok(addr) = s.parse::<Ipv6Addr>() else { return false };
    // `Abc::def` parses too; a real address shows a decimal digit, or is `::1`-like with `::`.
    let groups = s.split(':').filter(|g| !g.is_empty()).count();
    let has_digit = s.bytes().any(|c| c.is_ascii_digit());
    has_digit && (groups >= 2 || addr.is_loopback() || s.contains('.'))
}

/// SSA rules: area not 000, 666 or 9xx; group not 00; serial not 0000; not one digit repeated;
/// not a published example number.
fn valid_ssn(s: &str) -> bool {
    let d: Vec<u8> = s.bytes().filter(u8::is_ascii_digit).collect();
    let (area, group, serial) = (&d[..3], &d[3..5], &d[5..]);
    let examples: [&[u8]; 3] = [b"078051120", b"219099999", b"123456789"];
    area != b"000"
        && area != b"666"
        && area[0] != b'9'
        && group != b"00"
        && serial != b"0000"
        && !d.iter().all(|&c| c == d[0])
        && !examples.contains(&d.as_slice())
}
