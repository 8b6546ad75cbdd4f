package dev.hanlin.serve;

/**
 * A request the server refuses, with OpenAI's error fields: the HTTP status, {@code type} ({@code
 * invalid_request_error}, ...), the offending {@code param} (or null) and a {@code code} (or null).
 */
final class ApiError extends RuntimeException {
  final int status;
  final String type;
  final String param;
  final String code;

  ApiError(int status, String type, String param, String code, String message) {
    super(message);
    this.status = status;
    this.type = type;
    this.param = param;
    this.code = code;
  }

  static ApiError invalid(String param, String message) {
    return new ApiError(400, "invalid_request_error", param, null, message);
  }
}
