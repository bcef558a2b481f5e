package io.loraspark.pipeline.sweep;

import com.fasterxml.jackson.databind.JsonNode;
import io.loraspark.prep.job.PreprocessConfig;
import io.loraspark.prep.job.TooLongPolicy;
import io.loraspark.prep.schema.RecordFormat;
import io.loraspark.prep.template.TemplateKind;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Function;

/**
 * A sweep's {@code preprocess} section ({@link ConfigKeys#PREPROCESS}), read and type-checked with
 * the file: what {@code run} preprocesses into the run directory before the sweep. A key left out
 * is null and takes {@link PreprocessConfig}'s default; ranges are {@link PreprocessConfig}'s
 * checks, made when {@link #config} builds it.
 *
 * @param input the instruction data (file, directory or glob); a list of names is comma-joined
 */
public record PreprocessSettings(
    String input,
    RecordFormat format,
    TemplateKind template,
    TooLongPolicy onTooLong,
    Integer maxSeqLen,
    Integer shards,
    Integer seed,
    Double evalFraction,
    Boolean pack) {

  /**
   * Reads the section.
   *
   * @return null when the config has none
   * @throws IllegalArgumentException naming the file and the key: an unknown key, a value of the
   *     wrong type, or no {@code input}
   */
  static PreprocessSettings read(Path file, JsonNode pre) {
    if (pre == null || pre.isNull()) {
      return null;
    }
    Values v = new Values(file);
    for (Map.Entry<String, JsonNode> e :
        ConfigNodes.fields(
            file,
            pre,
            "preprocess must be a mapping",
            "preprocess.",
            SweepConfig.PREPROCESS_KEYS)) {
      v.raw.put(e.getKey(), ConfigNodes.scalar(file, "preprocess." + e.getKey(), e.getValue()));
    }
    if (!v.raw.containsKey("input")) {
      throw new IllegalArgumentException(file + ": preprocess.input is required");
    }
    return new PreprocessSettings(
        String.valueOf(v.raw.get("input")),
        v.parsed("format", RecordFormat::parse),
        v.parsed("template", TemplateKind::parse),
        v.parsed("on_too_long", TooLongPolicy::parse),
        v.integer("max_seq_len"),
        v.integer("shards"),
        v.integer("seed"),
        v.number("eval_fraction"),
        v.bool("pack"));
  }

  /** The section's raw scalars, each read as its key's type with a message naming the file. */
  private record Values(Path file, Map<String, Object> raw) {
    Values(Path file) {
      this(file, new java.util.LinkedHashMap<>());
    }

    <T> T parsed(String key, Function<String, T> parse) {
      Object v = raw.get(key);
      if (v == null) {
        return null;
      }
      try {
        return parse.apply(String.valueOf(v));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(file + ": preprocess." + key + ": " + e.getMessage(), e);
      }
    }

    Integer integer(String key) {
      return typed(
          key, "an integer", v -> v instanceof Long l && l == l.intValue() ? l.intValue() : null);
    }

    Double number(String key) {
      return typed(key, "a number", v -> v instanceof Number n ? n.doubleValue() : null);
    }

    Boolean bool(String key) {
      return typed(key, "true or false", v -> v instanceof Boolean b ? b : null);
    }

    /** {@code key}'s value as {@code read} reads it (null when not of its type), null if absent. */
    private <T> T typed(String key, String what, Function<Object, T> read) {
      Object v = raw.get(key);
      if (v == null) {
        return null;
      }
      T out = read.apply(v);
      if (out == null) {
        throw new IllegalArgumentException(
            file + ": preprocess." + key + " must be " + what + " but was " + v);
      }
      return out;
    }
  }

  /**
   * The preprocessing of {@code model}'s tokenizer into {@code runDir}.
   *
   * @throws IllegalArgumentException when a value is outside its range
   */
  public PreprocessConfig config(String model, Path runDir) {
    PreprocessConfig.Builder b = PreprocessConfig.builder(input, model, runDir.toString());
    setIfGiven(format, b::format);
    setIfGiven(template, b::template);
    setIfGiven(onTooLong, b::onTooLong);
    setIfGiven(maxSeqLen, b::maxSeqLen);
    setIfGiven(shards, b::shards);
    setIfGiven(seed, s -> b.seed(s));
    setIfGiven(evalFraction, b::evalFraction);
    setIfGiven(pack, b::pack);
    return b.build();
  }

  private static <T> void setIfGiven(T value, java.util.function.Consumer<T> setter) {
    if (value != null) {
      setter.accept(value);
    }
  }
}
