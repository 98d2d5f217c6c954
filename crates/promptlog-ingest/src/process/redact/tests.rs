//! Detectors (positives and negatives), actions, JSON handling and idempotence on strings.

use super::*;

const KEY: &[u8] = b"test-hash-key-0123456789";

fn redactor(rules: Vec<Rule>) -> Redactor {
    Redactor::new(RedactionSpec { rules, hash_key: Some(HashKey::new(KEY.to_vec())), ..RedactionSpec::default() })
        .unwrap()
}

fn all_masked() -> Redactor {
    redactor(Builtin::ALL.iter().map(|b| Rule::builtin(*b, Action::Mask)).collect())
}

/// The text after redaction with every built-in detector masking.
fn masked(text: &str) -> String {
    match all_masked().redact_str(text, &mut Tally::default()) {
        Outcome::Unchanged => text.to_owned(),
        Outcome::Changed(s) => s,
        Outcome::Drop => panic!("no drop rule"),
    }
}

#[track_caller]
fn assert_found(detector: &str, text: &str, secret: &str) {
    let out = masked(text);
    assert!(out.contains(&format!("[REDACTED:{detector}]")), "{detector} not found in {text:?}: {out:?}");
    assert!(!out.contains(secret), "{secret:?} left in {out:?}");
}

#[track_caller]
fn assert_left(text: &str) {
    assert_eq!(masked(text), text, "{text:?} should be left alone");
}

#[test]
fn email() {
    assert_found("email", "write to jane.doe+ops@mail.example.co.uk today", "jane.doe+ops@mail.example.co.uk");
    assert_eq!(masked("a@b.io, c@d.io"), "[REDACTED:email], [REDACTED:email]");
    assert_left("user@localhost and @mention and a@b");
    assert_left("x@-bad-.com");
}

#[test]
fn phone() {
    assert_found("phone", "call +1 (415) 555-2671 now", "555-2671");
    assert_found("phone", "call 415-555-2671", "415-555-2671");
    assert_found("phone", "ring +44 20 7946 0958 please", "7946 0958");
    assert_found("phone", "tel:+4915123456789", "4915123456789");
    assert_left("on 2024-01-15 at 10:30, order 12345, pi 3.14159265358979");
    assert_left("id 1733040000123 and version 1.2.3");
    assert_left("+12 3");
}

#[test]
fn credit_card_is_luhn_checked() {
    assert_found("credit_card", "card 4111 1111 1111 1111 exp 12/29", "4111 1111 1111 1111");
    assert_found("credit_card", "mc 5500-0000-0000-0004.", "5500-0000-0000-0004");
    assert_found("credit_card", "amex 378282246310005", "378282246310005");
    assert_found("credit_card", "visa 4242424242424242 then 2024", "4242424242424242");
    // Luhn fails: left alone.
    assert_left("card 4111 1111 1111 1112 exp 12/29");
    assert_left("4242424242424241");
    // Luhn passes but no issuer starts with 1, and a nanosecond timestamp is not a card.
    assert_left("1234567812345670 at 1733040000000000000");
    assert_left("0000 0000 0000 0000");
}

#[test]
fn luhn_and_mod97() {
    assert!(detectors::luhn(b"79927398713"));
    assert!(!detectors::luhn(b"79927398710"));
    assert!(detectors::iban_mod97(b"GB82WEST12345698765432"));
    assert!(!detectors::iban_mod97(b"GB82WEST12345698765433"));
}

#[test]
fn iban_is_mod97_checked() {
    assert_found("iban", "pay DE89 3704 0044 0532 0130 00 now", "3704 0044 0532 0130 00");
    assert_found("iban", "GB82WEST12345698765432", "GB82WEST12345698765432");
    assert_found("iban", "to FR1420041010050500013M02606.", "FR1420041010050500013M02606");
    // The country's length ends the IBAN: a following word in capitals stays.
    assert_eq!(masked("DE89370400440532013000 AND MORE"), "[REDACTED:iban] AND MORE");
    // Bad checksum: left alone.
    assert_left("pay DE89 3704 0044 0532 0130 01 now");
    assert_left("GB82WEST12345698765433");
}

#[test]
fn ip_addresses() {
    assert_found("ipv4", "from 192.168.1.20:8080", "192.168.1.20");
    assert_left("999.1.1.1 and 1.2.3.4.5 and v1.2.3");
    assert_found("ipv6", "host 2001:db8::8a2e:370:7334 up", "2001:db8::8a2e:370:7334");
    assert_found("ipv6", "link fe80::1 local", "fe80::1");
    assert_found("ipv6", "full 2001:0db8:85a3:0000:0000:8a2e:0370:7334.", "85a3:0000");
    assert_left("std::io::Error at 10:30:00, mac 00:1A:2B:3C:4D:5E, Abc::def");
}

#[test]
fn us_ssn() {
    assert_found("us_ssn", "ssn 536-22-8841.", "536-22-8841");
    assert_found("us_ssn", "ssn 536 22 8841", "536 22 8841");
    assert_left("000-12-3456 666-12-3456 912-12-3456 536-00-8841 536-22-0000 111-11-1111 078-05-1120");
}

#[test]
fn secrets() {
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n4lgOEePzNm0tRgeLezV6ffAt0gunVTLw\n-----END RSA PRIVATE KEY-----";
    let cases = [
        "sk-proj-AbCdEf1234567890GhIjKlMnOpQr",
        "sk-ant-api03-AbCdEf1234567890GhIjKlMnOpQr-_x",
        "sk-AbCdEf1234567890GhIjKlMn",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
        "xoxb-123456789012-abcdefABCDEF",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "pk_test_TYooMQauvdEDq54NiTphI7jx",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        pem,
    ];
    for secret in cases {
        assert_found("secret", &format!("key: {secret} end"), secret);
    }
    assert_eq!(masked("Authorization: Bearer abcdefghijklmnop1234.xyz"), "Authorization: [REDACTED:secret]");
    assert_left("task-force-abcdefghijklmnopqrstuvwxyz and AKIA123 and Bearer short and ghp_short");
    assert_left("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----");
}

#[test]
fn hash_action_is_keyed_and_joinable() {
    let r = redactor(vec![Rule::builtin(Builtin::Email, Action::Hash)]);
    let out = |text: &str| match r.redact_str(text, &mut Tally::default()) {
        Outcome::Changed(s) => s,
        other => panic!("{other:?}"),
    };
    let a = out("from jane@example.com");
    let b = out("to jane@example.com!");
    let marker = a.strip_prefix("from ").unwrap();
    assert_eq!(b, format!("to {marker}!"), "equal values give equal markers");
    assert!(
        marker.starts_with("[email:") && marker.ends_with(']') && marker.len() == "[email:]".len() + 16,
        "{marker}"
    );
    assert_ne!(out("from john@example.com"), a);
    let other_key = Redactor::new(RedactionSpec {
        rules: vec![Rule::builtin(Builtin::Email, Action::Hash)],
        hash_key: Some(HashKey::new(b"another key".to_vec())),
        ..RedactionSpec::default()
    })
    .unwrap();
    assert_ne!(other_key.redact_str("from jane@example.com", &mut Tally::default()), Outcome::Changed(a));
}

#[test]
fn drop_action_drops_the_value() {
    let r = redactor(vec![Rule::builtin(Builtin::Email, Action::Mask), Rule::builtin(Builtin::Secret, Action::Drop)]);
    assert_eq!(r.redact_str("jane@example.com sk-AbCdEf1234567890GhIjKlMn", &mut Tally::default()), Outcome::Drop);
    assert_eq!(r.redact_str("nothing here", &mut Tally::default()), Outcome::Unchanged);
}

#[test]
fn json_stays_valid_and_escapes_do_not_hide_matches() {
    let doc = serde_json::json!([{
        "role": "user",
        "parts": [{"type": "text", "content": "Hi,\nmail jane@example.com\nIBAN:\nDE89370400440532013000\n\"quoted\" 4111111111111111"}],
        "card": 4111111111111111u64,
        "nested": "{\"text\":\"line\\nsk-AbCdEf1234567890GhIjKlMn\"}",
    }])
    .to_string();
    let out = masked(&doc);
    let parsed: serde_json::Value = serde_json::from_str(&out).expect("still valid JSON");
    let text = parsed.to_string();
    for secret in ["jane@example.com", "DE89370400440532013000", "4111111111111111", "sk-AbCdEf"] {
        assert!(!out.contains(secret) && !text.contains(secret), "{secret} in {out}");
    }
    assert_eq!(parsed[0]["card"], "[REDACTED:credit_card]");
    assert_eq!(parsed[0]["role"], "user");
    let inner: serde_json::Value = serde_json::from_str(parsed[0]["nested"].as_str().unwrap()).unwrap();
    assert_eq!(inner["text"], "line\n[REDACTED:secret]");
    // Formatting outside the changed tokens is kept as sent.
    assert_eq!(masked("{ \"a\" : 1,\n  \"b\": \"x@y.io\" }"), "{ \"a\" : 1,\n  \"b\": \"[REDACTED:email]\" }");
    // Escapes in text that is not JSON (a Python repr) do not hide matches either.
    assert_eq!(
        masked(r"{'content': 'IBAN:\nDE89370400440532013000\tok'}"),
        r"{'content': 'IBAN:\n[REDACTED:iban]\tok'}"
    );
    // Text that only looks like JSON is treated as text.
    assert_eq!(masked("[1] see x@y.io"), "[1] see [REDACTED:email]");
}

#[test]
fn redacting_twice_changes_nothing() {
    let custom =
        |name: &str, re: &str| Rule { name: name.into(), detector: Detector::Custom(re.into()), action: Action::Mask };
    let mut rules: Vec<Rule> = Builtin::ALL.iter().map(|b| Rule::builtin(*b, Action::Hash)).collect();
    rules[1].action = Action::Mask;
    // Custom rules that would match the markers themselves.
    rules.push(custom("shouty", "REDACTED"));
    rules.push(custom("hexy", "[a-z_]+:[0-9a-f]{16}"));
    let r = redactor(rules);
    let text = "jane@example.com, 4111 1111 1111 1111, DE89 3704 0044 0532 0130 00, sk-AbCdEf1234567890GhIjKlMn, \
                192.168.0.1, fe80::1, 536-22-8841, +1 415 555 2671, {\"x\": \"y@z.io\"}";
    let Outcome::Changed(once) = r.redact_str(text, &mut Tally::default()) else { panic!() };
    for marker in ["[REDACTED:", "[credit_card:", "[iban:", "[secret:", "[ipv4:", "[ipv6:", "[us_ssn:", "[phone:"] {
        assert!(once.contains(marker), "{marker} missing in {once}");
    }
    let mut tally = Tally::default();
    assert_eq!(r.redact_str(&once, &mut tally), Outcome::Unchanged, "{once}");
    assert_eq!(tally.total(), 0);
    let json = serde_json::json!({"m": once}).to_string();
    assert_eq!(r.redact_str(&json, &mut Tally::default()), Outcome::Unchanged);
}

#[test]
fn custom_rules_and_counts() {
    let r = redactor(vec![
        Rule::builtin(Builtin::Email, Action::Mask),
        Rule { name: "ticket".into(), detector: Detector::Custom(r"TCK-[0-9]{6}".into()), action: Action::Mask },
    ]);
    let mut tally = Tally::default();
    let out = r.redact_str("TCK-123456 by a@b.io and TCK-654321", &mut tally);
    assert_eq!(out, Outcome::Changed("[REDACTED:ticket] by [REDACTED:email] and [REDACTED:ticket]".into()));
    assert_eq!(tally.per_rule, vec![1, 2]);
}

#[test]
fn bad_specs_are_refused_naming_the_rule() {
    let bad = Rule { name: "broken".into(), detector: Detector::Custom("a(b".into()), action: Action::Mask };
    let err = Redactor::new(RedactionSpec { rules: vec![bad], ..RedactionSpec::default() }).unwrap_err();
    assert!(err.to_string().contains("broken"), "{err}");
    let lookaround = Rule { name: "la".into(), detector: Detector::Custom("(?<=x)y".into()), action: Action::Mask };
    assert!(Redactor::new(RedactionSpec { rules: vec![lookaround], ..RedactionSpec::default() }).is_err());
    let hash = Rule::builtin(Builtin::Email, Action::Hash);
    let err = Redactor::new(RedactionSpec { rules: vec![hash], ..RedactionSpec::default() }).unwrap_err();
    assert!(matches!(err, SpecError::MissingKey(_)), "{err}");
    let spec = RedactionSpec { content: ContentPolicy::Hash, ..RedactionSpec::default() };
    assert!(matches!(Redactor::new(spec).unwrap_err(), SpecError::MissingKey(_)));
    let bad_name = Rule { name: "a b".into(), detector: Detector::Custom("x".into()), action: Action::Mask };
    assert!(matches!(
        Redactor::new(RedactionSpec { rules: vec![bad_name], ..RedactionSpec::default() }),
        Err(SpecError::Name(_))
    ));
}

#[test]
fn content_policy_parses() {
    for (text, policy) in [
        ("full", ContentPolicy::Full),
        ("hash", ContentPolicy::Hash),
        ("drop", ContentPolicy::Drop),
        ("truncate:100", ContentPolicy::Truncate(100)),
    ] {
        assert_eq!(text.parse::<ContentPolicy>(), Ok(policy));
        assert_eq!(policy.to_string(), text);
    }
    for bad in ["truncate:0", "truncate:x", "keep", ""] {
        assert!(bad.parse::<ContentPolicy>().is_err(), "{bad}");
    }
}

#[test]
fn content_keys_cover_every_convention() {
    for key in [
        "gen_ai.input.messages",
        "gen_ai.system_instructions",
        "gen_ai.prompt.0.content",
        "gen_ai.completion.1.tool_calls.0.arguments",
        "llm.input_messages.0.message.content",
        "llm.input_messages.0.message.contents.1.message_content.text",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments",
        "input.value",
        "ai.prompt.messages",
        "ai.response.text",
        "pydantic_ai.all_messages",
        "langfuse.observation.input",
        "llm.prompt_template.template",
        "llm.prompt_template.variables",
        "traceloop.prompt.template",
        "traceloop.prompt.template_variables",
        "traceloop.prompt.template_variables.topic",
    ] {
        assert!(content::is_content_key(key), "{key}");
    }
    for key in [
        "gen_ai.prompt.0.role",
        "gen_ai.completion.0.finish_reason",
        "gen_ai.request.model",
        "llm.model_name",
        "llm.prompt_template.version",
        "traceloop.prompt.key",
        "gen_ai.prompt.name",
    ] {
        assert!(!content::is_content_key(key), "{key}");
    }
}

#[test]
fn truncation_is_utf8_safe() {
    let mut s = "héllo wörld".to_owned();
    assert!(content::truncate_str(&mut s, 2));
    assert_eq!(s, "h");
    let mut s = "abc".to_owned();
    assert!(!content::truncate_str(&mut s, 3));
}
