package io.loraspark.pipeline.serve;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * A request the server refuses, with its HTTP status and OpenAI's error body {@code {"error":
 * {"message", "type", "param", "code"}}}. The message is one line for the client; never a stack
 * trace.
 */
final class ApiError extends RuntimeException {
  private static final long serialVersionUID = 1L;

  final int status;
  final String type;
  final String param;
  final String code;

  ApiError(int status, String type, String param, String code, String message) {
    super(message, null, false, false);
    this.status = status;
    this.type = type;
    this.param = param;
    this.code = code;
  }

  /** 400: a malformed body or a field out of range, naming the field. */
  static ApiError invalid(String param, String message) {
    return new ApiError(400, "invalid_request_error", param, null, message);
  }

  static ApiError unauthorized() {
    return new ApiError(
        401,
        "invalid_request_error",
        null,
        "invalid_api_key",
        "missing or wrong API key; send it as 'Authorization: Bearer <key>'");
  }

  static ApiError unknownModel(String model) {
    return new ApiError(
        404,
        "invalid_request_error",
        "model",
        "model_not_found",
        "the model '" + model + "' does not exist; GET /v1/models lists the base and adapters");
  }

  static ApiError tooLong(String message) {
    return new ApiError(
        413, "invalid_request_error", "messages", "context_length_exceeded", message);
  }

  static ApiError full(String message) {
    return new ApiError(429, "rate_limit_error", null, "server_busy", message);
  }

  static ApiError unavailable(String message) {
    return new ApiError(503, "server_error", null, "unavailable", message);
  }

  /** A 500 for an unexpected failure: its class name only, never a stack trace. */
  static ApiError internal(Exception e) {
    return new ApiError(
        500, "server_error", null, null, "internal error: " + e.getClass().getSimpleName());
  }

  /** The OpenAI error body. */
  ObjectNode body() {
    ObjectNode root = JsonNodeFactory.instance.objectNode();
    ObjectNode e = root.putObject("error");
    e.put("message", getMessage());
    e.put("type", type);
    e.put("param", param);
    e.put("code", code);
    return root;
  }
}
