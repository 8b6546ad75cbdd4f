package dev.hanlin.config;

/**
 * A configuration that cannot be used — a YAML config, a {@code --set} flag, a model's {@code
 * config.json} or adapter config — its message ready for the user, naming the file and the key.
 */
public final class ConfigException extends RuntimeException {
  public ConfigException(String message) {
    super(message);
  }

  public ConfigException(String message, Throwable cause) {
    super(message, cause);
  }
}
