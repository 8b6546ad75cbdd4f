/**
 * Loading configuration, one way for every module: {@link dev.hanlin.config.StrictYaml} maps YAML
 * and {@code --set} overrides onto records (unknown keys, duplicates and wrong types are errors
 * naming the key and line), and {@link dev.hanlin.config.ConfigException} is the one error a bad
 * configuration raises, whether a YAML config, a flag or a model's {@code config.json}.
 *
 * <p>It lives in native-bindings, not beside the trainer, because it is the one module below every
 * config reader: model/ ({@code LlamaConfig}, {@code LoraConfig}) and data/ ({@code PrepareConfig},
 * {@code SftOptions}) share no other dependency but the tokenizer, and train/ and cli/ sit above
 * both. It knows nothing of libtorch.
 */
package dev.hanlin.config;
