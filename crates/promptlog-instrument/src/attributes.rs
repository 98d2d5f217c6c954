//! Every attribute, event and value name this crate writes, defined once.
//!
//! The names follow the OpenTelemetry GenAI semantic conventions (v1.41, the last release in
//! `semantic-conventions`, plus the unchanged names of `semantic-conventions-genai`). They are our own
//! constants because the official `opentelemetry-semantic-conventions` crate marks every `GEN_AI_*`
//! constant experimental and deprecated.

/// Schema URL of the conventions these names come from.
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.41.0";
/// Instrumentation scope name of every span and log record this crate emits.
pub const SCOPE_NAME: &str = "promptlog-instrument";

/// `chat`, `text_completion`, `embeddings`, `execute_tool`, …
pub const OPERATION_NAME: &str = "gen_ai.operation.name";
/// `openai`, `anthropic`, `gcp.gemini`, `azure.ai.openai`, …
pub const PROVIDER_NAME: &str = "gen_ai.provider.name";
/// The model the request asked for.
pub const REQUEST_MODEL: &str = "gen_ai.request.model";
/// Sampling temperature (double).
pub const REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
/// Maximum output tokens (int).
pub const REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
/// Nucleus sampling (double).
pub const REQUEST_TOP_P: &str = "gen_ai.request.top_p";
/// Top-k sampling (double in v1.41).
pub const REQUEST_TOP_K: &str = "gen_ai.request.top_k";
/// Frequency penalty (double).
pub const REQUEST_FREQUENCY_PENALTY: &str = "gen_ai.request.frequency_penalty";
/// Presence penalty (double).
pub const REQUEST_PRESENCE_PENALTY: &str = "gen_ai.request.presence_penalty";
/// Stop sequences (string[]).
pub const REQUEST_STOP_SEQUENCES: &str = "gen_ai.request.stop_sequences";
/// Seed (int).
pub const REQUEST_SEED: &str = "gen_ai.request.seed";
/// Number of choices asked for (int), set only when not 1.
pub const REQUEST_CHOICE_COUNT: &str = "gen_ai.request.choice.count";
/// True when the response is streamed.
pub const REQUEST_STREAM: &str = "gen_ai.request.stream";
/// Embeddings encoding formats (string[]).
pub const REQUEST_ENCODING_FORMATS: &str = "gen_ai.request.encoding_formats";
/// Requested output type (`text`, `json`, …).
pub const OUTPUT_TYPE: &str = "gen_ai.output.type";
/// The provider's id of the response.
pub const RESPONSE_ID: &str = "gen_ai.response.id";
/// The model that answered (often a dated id).
pub const RESPONSE_MODEL: &str = "gen_ai.response.model";
/// Why each choice ended (string[]).
pub const RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
/// Seconds from the request to the first streamed chunk (double).
pub const RESPONSE_TIME_TO_FIRST_CHUNK: &str = "gen_ai.response.time_to_first_chunk";
/// Input tokens, inclusive of cache reads and writes.
pub const USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
/// Output tokens, inclusive of reasoning.
pub const USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
/// Input tokens read from the provider's cache (a subset of the input).
pub const USAGE_CACHE_READ_INPUT_TOKENS: &str = "gen_ai.usage.cache_read.input_tokens";
/// Input tokens written to the provider's cache (a subset of the input).
pub const USAGE_CACHE_CREATION_INPUT_TOKENS: &str = "gen_ai.usage.cache_creation.input_tokens";
/// Reasoning tokens (a subset of the output).
pub const USAGE_REASONING_OUTPUT_TOKENS: &str = "gen_ai.usage.reasoning.output_tokens";
/// Embedding vector length (int).
pub const EMBEDDINGS_DIMENSION_COUNT: &str = "gen_ai.embeddings.dimension.count";
/// Conversation / session / thread id.
pub const CONVERSATION_ID: &str = "gen_ai.conversation.id";
/// Input messages, OTel messages JSON.
pub const INPUT_MESSAGES: &str = "gen_ai.input.messages";
/// Output messages, OTel messages JSON.
pub const OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
/// System instructions given apart from the chat history (parts JSON).
pub const SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
/// Tool name of an `execute_tool` span.
pub const TOOL_NAME: &str = "gen_ai.tool.name";
/// Tool call id of an `execute_tool` span.
pub const TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
/// Tool type (`function`, `extension`, `datastore`).
pub const TOOL_TYPE: &str = "gen_ai.tool.type";
/// Tool arguments (opt-in content).
pub const TOOL_CALL_ARGUMENTS: &str = "gen_ai.tool.call.arguments";
/// Tool result (opt-in content).
pub const TOOL_CALL_RESULT: &str = "gen_ai.tool.call.result";
/// OpenAI service tier that served the request.
pub const OPENAI_RESPONSE_SERVICE_TIER: &str = "openai.response.service_tier";
/// OpenAI system fingerprint.
pub const OPENAI_RESPONSE_SYSTEM_FINGERPRINT: &str = "openai.response.system_fingerprint";

/// Host of the model server.
pub const SERVER_ADDRESS: &str = "server.address";
/// Port of the model server.
pub const SERVER_PORT: &str = "server.port";
/// The error's class (`_OTHER` when unknown).
pub const ERROR_TYPE: &str = "error.type";
/// The end user (general registry).
pub const USER_ID: &str = "user.id";
/// Free-form tags (string[]), as OpenInference spells them; promptlog reads them into `Tags`.
pub const TAGS: &str = "tag.tags";
/// Set (true) when captured content was cut to the byte cap.
pub const CONTENT_TRUNCATED: &str = "promptlog.content.truncated";

/// Log event with a call's content (capture mode event only / span and event).
pub const EVENT_INFERENCE_DETAILS: &str = "gen_ai.client.inference.operation.details";
/// Log event with an evaluation (score) of a call.
pub const EVENT_EVALUATION_RESULT: &str = "gen_ai.evaluation.result";
/// What was evaluated (`Relevance`, `thumbs`, …).
pub const EVALUATION_NAME: &str = "gen_ai.evaluation.name";
/// Numeric score (double).
pub const EVALUATION_SCORE_VALUE: &str = "gen_ai.evaluation.score.value";
/// Low-cardinality label (`relevant`, `pass`, …).
pub const EVALUATION_SCORE_LABEL: &str = "gen_ai.evaluation.score.label";
/// Free-text explanation.
pub const EVALUATION_EXPLANATION: &str = "gen_ai.evaluation.explanation";

/// `error.type` of a call dropped before it was finished or failed.
pub const ERROR_TYPE_OTHER: &str = "_OTHER";
