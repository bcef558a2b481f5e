package io.loraspark.prep.schema;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/** The record formats the job understands; {@link #AUTO} detects one from the data. */
public enum RecordFormat {
  /** Detect from the keys of the first records (see {@link #detect}). */
  AUTO(null),
  /** {@code instruction, input, output}. */
  ALPACA(FieldsMapper.ALPACA),
  /** {@code instruction, context, response}. */
  DOLLY(FieldsMapper.DOLLY),
  /** {@code conversations: [{from, value}]}. */
  SHAREGPT(TurnsMapper.SHAREGPT),
  /** {@code messages: [{role, content}]}. */
  MESSAGES(TurnsMapper.MESSAGES),
  /** {@code instruction, instances: [{input, output}]} (self-instruct seed tasks). */
  SELF_INSTRUCT(SelfInstructMapper.INSTANCE);

  private final RecordMapper mapper;

  RecordFormat(RecordMapper mapper) {
    this.mapper = mapper;
  }

  /**
   * The mapper of this format.
   *
   * @throws IllegalStateException for {@link #AUTO}, which must be resolved with {@link #detect}
   */
  public RecordMapper mapper() {
    if (mapper == null) {
      throw new IllegalStateException("resolve AUTO with RecordFormat.detect(...) first");
    }
    return mapper;
  }

  /** The name used on the command line, e.g. {@code self-instruct}. */
  public String cliName() {
    return name().toLowerCase(Locale.ROOT).replace('_', '-');
  }

  /**
   * Parses a command-line name (case-insensitive, '-' or '_').
   *
   * @throws IllegalArgumentException listing the valid names
   */
  public static RecordFormat parse(String name) {
    String key = name.strip().toUpperCase(Locale.ROOT).replace('-', '_');
    return Arrays.stream(values())
        .filter(f -> f.name().equals(key))
        .findFirst()
        .orElseThrow(
            () ->
                new IllegalArgumentException(
                    "--format \""
                        + name
                        + "\" is unknown; valid formats are "
                        + Arrays.stream(values())
                            .map(RecordFormat::cliName)
                            .collect(Collectors.joining("|"))));
  }

  /**
   * The format whose signature most sample records match: {@code messages} → MESSAGES, {@code
   * conversations} → SHAREGPT, {@code instruction}+{@code instances} → SELF_INSTRUCT, {@code
   * instruction}+({@code response} or {@code context}) → DOLLY, {@code instruction}+({@code output}
   * or {@code input}) → ALPACA.
   *
   * @param sample parsed records (non-objects are ignored)
   * @param input the input, named in the message
   * @throws IllegalArgumentException if no sample record matches any format
   */
  public static RecordFormat detect(List<JsonNode> sample, String input) {
    Map<RecordFormat, Integer> votes = new EnumMap<>(RecordFormat.class);
    for (JsonNode record : sample) {
      RecordFormat f = signature(record);
      if (f != null) {
        votes.merge(f, 1, Integer::sum);
      }
    }
    return votes.entrySet().stream()
        .max(Map.Entry.comparingByValue())
        .map(Map.Entry::getKey)
        .orElseThrow(
            () ->
                new IllegalArgumentException(
                    "cannot detect the record format of "
                        + input
                        + " from its first "
                        + sample.size()
                        + " valid records"
                        + firstKeys(sample)
                        + "; pass --format alpaca|dolly|sharegpt|messages|self-instruct or"
                        + " --columns prompt=COL,response=COL"));
  }

  private static RecordFormat signature(JsonNode r) {
    if (!r.isObject()) {
      return null;
    }
    if (r.has("messages")) {
      return MESSAGES;
    }
    if (r.has("conversations")) {
      return SHAREGPT;
    }
    if (!r.has("instruction")) {
      return null;
    }
    if (r.has("instances")) {
      return SELF_INSTRUCT;
    }
    if (r.has("response") || r.has("context")) {
      return DOLLY;
    }
    return r.has("output") || r.has("input") ? ALPACA : null;
  }

  private static String firstKeys(List<JsonNode> sample) {
    return sample.stream()
        .filter(JsonNode::isObject)
        .findFirst()
        .map(r -> " (first record's keys: " + iterable(r) + ")")
        .orElse("");
  }

  private static List<String> iterable(JsonNode r) {
    return r.properties().stream().map(Map.Entry::getKey).toList();
  }
}
