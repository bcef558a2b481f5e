package io.loraspark.prep.schema;

import java.util.Locale;

/** Why an input row went to {@code rejected/}; {@link #code()} is what the outputs record. */
public enum RejectReason {
  /** Not valid strict JSON (trailing comma, unquoted key, comment, trailing content, ...). */
  MALFORMED_JSON,
  /** The row's bytes are not valid UTF-8. */
  INVALID_UTF8,
  /** A CSV row the parser could not split into the header's columns. */
  MALFORMED_CSV,
  /** Valid JSON, but not an object. */
  NOT_AN_OBJECT,
  /** A required field (instruction/prompt, response/output, messages, ...) is absent or null. */
  MISSING_FIELD,
  /** A required field is empty or only whitespace. */
  EMPTY_FIELD,
  /** A field has the wrong JSON type (e.g. a number where text is expected). */
  WRONG_TYPE,
  /** Turns that do not form a trainable conversation (unknown role, wrong order, ...). */
  INVALID_CONVERSATION,
  /** The chat template failed on this row (raise_exception, limits, non-incremental output). */
  TEMPLATE_ERROR,
  /** A token straddles the prompt/response boundary, so no exact label mask exists. */
  MASK_BOUNDARY,
  /** Longer than max_seq_len (with on-too-long=reject, or nothing scored is left). */
  TOO_LONG;

  /** Lower-case code, e.g. {@code malformed_json}. */
  public String code() {
    return name().toLowerCase(Locale.ROOT);
  }
}
