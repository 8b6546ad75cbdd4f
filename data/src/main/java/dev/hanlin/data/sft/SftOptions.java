package dev.hanlin.data.sft;

import com.fasterxml.jackson.annotation.JsonProperty;
import dev.hanlin.config.StrictYaml;
import java.util.Locale;
import java.util.Map;

/**
 * How instruction-tuning records become training examples: the {@code sft:} section of a config.
 * Defaults follow Llama2-Chinese's finetune_clm (prompt field {@code input}, response field {@code
 * target}, loss on the response only); configs/sft-example.yaml comments every key.
 */
public record SftOptions(
    @JsonProperty("format") String format,
    @JsonProperty("text_field") String textField,
    @JsonProperty("prompt_field") String promptField,
    @JsonProperty("response_field") String responseField,
    @JsonProperty("instruction_field") String instructionField,
    @JsonProperty("input_field") String inputField,
    @JsonProperty("output_field") String outputField,
    @JsonProperty("prompt_template") String promptTemplate,
    @JsonProperty("prompt_template_no_input") String promptTemplateNoInput,
    @JsonProperty("train_on_inputs") Boolean trainOnInputs,
    @JsonProperty("last_turn_only") Boolean lastTurnOnly,
    @JsonProperty("group_by_length") Boolean groupByLength,
    @JsonProperty("pad_to_multiple_of") Integer padToMultipleOf,
    @JsonProperty("packing") Boolean packing) {

  /** The record layouts {@link SftDataset} reads. */
  public enum Format {
    /** One text field; every token is trained. */
    TEXT,
    /** A prompt field and a response field; the response is trained. */
    PROMPT_RESPONSE,
    /** Llama2-Chinese chat text {@code <s>Human: ...\n</s><s>Assistant: ...\n</s>}. */
    CHAT,
    /** Alpaca {@code instruction} / {@code input} / {@code output} put into a template. */
    ALPACA;

    static Format parse(String s) {
      try {
        return valueOf(s.toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(
            "'format' must be one of text, prompt_response, chat, alpaca; got '" + s + "'");
      }
    }
  }

  /** Stanford Alpaca's prompt, with {@code {instruction}} and {@code {input}} filled in. */
  public static final String ALPACA_TEMPLATE =
      "Below is an instruction that describes a task, paired with an input that provides further"
          + " context. Write a response that appropriately completes the request.\n\n"
          + "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n";

  /** Stanford Alpaca's prompt for records whose input is empty. */
  public static final String ALPACA_TEMPLATE_NO_INPUT =
      "Below is an instruction that describes a task. Write a response that appropriately"
          + " completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n";

  /**
   * Every key at its default, as an empty {@code sft:} section gives (the defaults live in the
   * compact constructor only); {@code with...} changes one.
   */
  public static final SftOptions DEFAULT = StrictYaml.read(null, SftOptions.class, Map.of());

  public SftOptions {
    format = format == null ? "prompt_response" : format.toLowerCase(Locale.ROOT);
    Format.parse(format);
    textField = or(textField, "text");
    promptField = or(promptField, "input");
    responseField = or(responseField, "target");
    instructionField = or(instructionField, "instruction");
    inputField = or(inputField, "input");
    outputField = or(outputField, "output");
    promptTemplate = or(promptTemplate, ALPACA_TEMPLATE);
    promptTemplateNoInput = or(promptTemplateNoInput, ALPACA_TEMPLATE_NO_INPUT);
    if (!promptTemplate.contains("{instruction}"))
      throw new IllegalArgumentException("'prompt_template' must contain {instruction}");
    trainOnInputs = or(trainOnInputs, false);
    lastTurnOnly = or(lastTurnOnly, false);
    groupByLength = or(groupByLength, false);
    padToMultipleOf = or(padToMultipleOf, 8);
    packing = or(packing, false);
    if (padToMultipleOf < 1)
      throw new IllegalArgumentException("'pad_to_multiple_of' must be >= 1");
  }

  public Format kind() {
    return Format.parse(format);
  }

  /** These options with another format (null: the default). */
  public SftOptions withFormat(String v) {
    return new SftOptions(
        v,
        textField,
        promptField,
        responseField,
        instructionField,
        inputField,
        outputField,
        promptTemplate,
        promptTemplateNoInput,
        trainOnInputs,
        lastTurnOnly,
        groupByLength,
        padToMultipleOf,
        packing);
  }

  /** These options with another prompt field (null: the default). */
  public SftOptions withPromptField(String v) {
    return new SftOptions(
        format,
        textField,
        v,
        responseField,
        instructionField,
        inputField,
        outputField,
        promptTemplate,
        promptTemplateNoInput,
        trainOnInputs,
        lastTurnOnly,
        groupByLength,
        padToMultipleOf,
        packing);
  }

  /** These options with another response field (null: the default). */
  public SftOptions withResponseField(String v) {
    return new SftOptions(
        format,
        textField,
        promptField,
        v,
        instructionField,
        inputField,
        outputField,
        promptTemplate,
        promptTemplateNoInput,
        trainOnInputs,
        lastTurnOnly,
        groupByLength,
        padToMultipleOf,
        packing);
  }

  private static <T> T or(T v, T d) {
    return v == null ? d : v;
  }
}
