//! GBNF grammars for constrained decoding.
//!
//! `response_format: {"type": "json_object"}` promises output that parses as
//! one JSON object. llama.cpp's grammar sampler masks every token that would
//! leave the grammar, so the model can only write such an object and then end
//! (once `root` is complete only end-of-generation tokens are allowed).
//!
//! Whitespace is bounded (llama.cpp's own `json.gbnf` does the same) so a small
//! model cannot loop on newlines forever inside the object.

/// Root rule name of [`JSON_OBJECT`].
pub const JSON_OBJECT_ROOT: &str = "root";

/// Any JSON object (members may hold any JSON value).
pub const JSON_OBJECT: &str = r#"
root   ::= "{" ws ( member ( "," ws member )* )? "}"
object ::= "{" ws ( member ( "," ws member )* )? "}" ws
member ::= string ":" ws value
value  ::= object | array | string | number | ( "true" | "false" | "null" ) ws
array  ::= "[" ws ( value ( "," ws value )* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} ) )* "\"" ws
number ::= ( "-"? ( [0-9] | [1-9] [0-9]{0,15} ) ) ( "." [0-9]+ )? ( [eE] [-+]? [0-9] [1-9]{0,15} )? ws
ws     ::= | " " | "\n" [ \t]{0,20}
"#;
