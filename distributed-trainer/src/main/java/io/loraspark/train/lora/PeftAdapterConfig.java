package io.loraspark.train.lora;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.SerializableString;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.io.CharacterEscapes;
import com.fasterxml.jackson.core.io.SerializedString;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.model.Projection;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Predicate;

/**
 * {@code adapter_config.json} of a PEFT LoRA adapter: rendered as PEFT 0.13+ writes it ({@code
 * json.dumps(config, indent=2, sort_keys=True)}) and parsed strictly. Options that change the
 * adapter's math and that this engine does not implement are refused, naming the key. {@code
 * "use_dora": true} selects {@link LoraMethod#DORA}.
 */
final class PeftAdapterConfig {

  /** The file name inside an adapter directory. */
  static final String FILE = "adapter_config.json";

  /** The only {@code peft_type} this class reads and writes. */
  static final String PEFT_TYPE = "LORA";

  /**
   * The {@code peft_type} of a Delta-LoRA adapter, which PEFT has no format for: PEFT refuses it
   * rather than load A and B without ΔW as a plain LoRA.
   */
  static final String DELTA_LORA_TYPE = "DELTA_LORA";

  private static final ObjectMapper READER =
      JsonMapper.builder(
              JsonFactory.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build())
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .build();

  private static final ObjectMapper WRITER = new ObjectMapper();

  /**
   * An option this engine supports only at its neutral value.
   *
   * @param key the adapter_config.json key
   * @param valid what is accepted, for the message
   * @param ok whether a present value is acceptable (absent keys always are)
   */
  private record Fixed(String key, String valid, Predicate<JsonNode> ok) {}

  private static final List<Fixed> FIXED =
      List.of(
          new Fixed("fan_in_fan_out", "false", n -> n.isNull() || isFalse(n)),
          new Fixed("lora_bias", "false", n -> n.isNull() || isFalse(n)),
          new Fixed("bias", "\"none\"", n -> n.isNull() || "none".equals(n.textValue())),
          new Fixed("rank_pattern", "{} or null", n -> n.isNull() || isEmptyObject(n)),
          new Fixed("alpha_pattern", "{} or null", n -> n.isNull() || isEmptyObject(n)),
          new Fixed("layers_to_transform", "null", JsonNode::isNull),
          new Fixed("layer_replication", "null", JsonNode::isNull),
          new Fixed("modules_to_save", "null or []", n -> n.isNull() || isEmptyArray(n)),
          new Fixed("exclude_modules", "null or []", n -> n.isNull() || isEmptyArray(n)),
          new Fixed("trainable_token_indices", "null", JsonNode::isNull),
          new Fixed("target_parameters", "null or []", n -> n.isNull() || isEmptyArray(n)));

  private PeftAdapterConfig() {}

  /**
   * The file's text for {@code config}: every key PEFT 0.13 writes for a LoRA adapter on a causal
   * LM, sorted, two-space indented, {@code ": "} and {@code ","} separators, no trailing newline.
   * {@code target_modules} is sorted by name; an integral lora_alpha is written as an integer.
   *
   * @param baseModel base_model_name_or_path; null writes JSON null
   */
  static String render(LoraConfig config, String baseModel) {
    ObjectNode n = WRITER.createObjectNode();
    n.set("alpha_pattern", n.objectNode());
    n.putNull("auto_mapping");
    n.put("base_model_name_or_path", baseModel);
    n.put("bias", "none");
    n.put("fan_in_fan_out", false);
    n.put("inference_mode", true);
    n.put("init_lora_weights", true);
    n.putNull("layer_replication");
    n.putNull("layers_pattern");
    n.putNull("layers_to_transform");
    n.set("loftq_config", n.objectNode());
    double alpha = config.alpha();
    if (alpha == Math.rint(alpha) && Math.abs(alpha) < 1e15) {
      n.put("lora_alpha", (long) alpha);
    } else {
      n.put("lora_alpha", alpha);
    }
    n.put("lora_dropout", config.dropout());
    n.putNull("megatron_config");
    n.put("megatron_core", "megatron.core");
    n.putNull("modules_to_save");
    n.put("peft_type", config.method() == LoraMethod.DELTA_LORA ? DELTA_LORA_TYPE : PEFT_TYPE);
    n.put("r", config.rank());
    n.set("rank_pattern", n.objectNode());
    n.putNull("revision");
    ArrayNode targets = n.putArray("target_modules");
    config.targets().stream().map(PeftAdapterConfig::moduleName).sorted().forEach(targets::add);
    n.put("task_type", "CAUSAL_LM");
    n.put("use_dora", config.method() == LoraMethod.DORA);
    n.put("use_rslora", config.rsLora());
    try {
      return WRITER.writer(pythonStyle()).with(new PythonEscapes()).writeValueAsString(n);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot render " + FILE + ": " + e.getOriginalMessage(), e);
    }
  }

  /** PEFT's module name for a projection: {@code q_proj}, ..., {@code down_proj}. */
  static String moduleName(Projection p) {
    return p.shortName() + "_proj";
  }

  private static DefaultPrettyPrinter pythonStyle() {
    Separators seps =
        Separators.createDefaultInstance()
            .withObjectFieldValueSpacing(Separators.Spacing.AFTER)
            .withObjectEntrySpacing(Separators.Spacing.NONE)
            .withArrayValueSpacing(Separators.Spacing.NONE)
            .withObjectEmptySeparator("")
            .withArrayEmptySeparator("");
    DefaultIndenter indent = new DefaultIndenter("  ", "\n");
    DefaultPrettyPrinter p = new DefaultPrettyPrinter(seps);
    p.indentObjectsWith(indent);
    p.indentArraysWith(indent);
    return p;
  }

  /**
   * Python's {@code json.dumps(ensure_ascii=True)} escaping: every character outside space..~ that
   * has no short form becomes a backslash, {@code u} and four lowercase hex digits (per UTF-16
   * unit, so surrogate pairs stay pairs).
   */
  private static final class PythonEscapes extends CharacterEscapes {
    private final int[] ascii = standardAsciiEscapesForJSON();

    PythonEscapes() {
      for (int c = 0; c < 0x20; c++) {
        if (ascii[c] == ESCAPE_STANDARD) {
          ascii[c] = ESCAPE_CUSTOM;
        }
      }
      ascii[0x7f] = ESCAPE_CUSTOM;
    }

    @Override
    public int[] getEscapeCodesForAscii() {
      return ascii;
    }

    @Override
    public SerializableString getEscapeSequence(int ch) {
      return new SerializedString(String.format("\\u%04x", ch));
    }
  }

  /**
   * Reads and validates {@code file}.
   *
   * @throws IllegalArgumentException with a one-line message naming the file and key when the file
   *     is missing, not a JSON object, not a LoRA adapter, out of range, or uses an option this
   *     engine does not implement
   * @throws UncheckedIOException naming the file if it cannot be read
   */
  static LoraConfig read(Path file) {
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException(
          file
              + " is missing; a PEFT LoRA adapter directory holds "
              + FILE
              + " and "
              + PeftAdapter.WEIGHTS_FILE);
    }
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(file);
    } catch (IOException e) {
      throw new UncheckedIOException(file + ": cannot read: " + e, e);
    }
    JsonNode root;
    try {
      root = READER.readTree(bytes);
    } catch (IOException e) {
      String where =
          e instanceof JsonProcessingException j && j.getLocation() != null
              ? " at line "
                  + j.getLocation().getLineNr()
                  + ", column "
                  + j.getLocation().getColumnNr()
              : "";
      String msg = e instanceof JsonProcessingException j ? j.getOriginalMessage() : e.toString();
      throw new IllegalArgumentException(
          file + " is not valid JSON" + where + ": " + firstLine(msg), e);
    }
    if (root == null || !root.isObject()) {
      throw new IllegalArgumentException(file + " must hold a JSON object");
    }
    return parse(file, root);
  }

  /** Validates a parsed config; {@code file} is named in messages. */
  static LoraConfig parse(Path file, JsonNode root) {
    checkPeftType(file, root);
    JsonNode task = root.get("task_type");
    if (task != null && !task.isNull() && !"CAUSAL_LM".equals(task.textValue())) {
      throw bad(file, "task_type", "is " + task + "; only \"CAUSAL_LM\" (or null) is supported");
    }
    for (Fixed f : FIXED) {
      JsonNode v = root.get(f.key());
      if (v != null && !f.ok().test(v)) {
        throw bad(
            file, f.key(), "is " + v + ", which this engine does not support; valid: " + f.valid());
      }
    }
    int rank = rank(file, root);
    double alpha = positiveNumber(file, root, "lora_alpha");
    double dropout = dropout(file, root);
    boolean rsLora = bool(file, root, "use_rslora");
    LoraMethod method = bool(file, root, "use_dora") ? LoraMethod.DORA : LoraMethod.LORA;
    if (DELTA_LORA_TYPE.equals(root.get("peft_type").textValue())) {
      method = LoraMethod.DELTA_LORA;
    }
    return new LoraConfig(rank, alpha, dropout, targets(file, root), rsLora, method);
  }

  private static void checkPeftType(Path file, JsonNode root) {
    JsonNode t = root.get("peft_type");
    if (t == null || t.isNull()) {
      throw bad(file, "peft_type", "is missing; expected \"" + PEFT_TYPE + "\"");
    }
    if (!PEFT_TYPE.equals(t.textValue()) && !DELTA_LORA_TYPE.equals(t.textValue())) {
      throw bad(
          file,
          "peft_type",
          "is " + t + "; only \"" + PEFT_TYPE + "\" (or lora-spark's \"DELTA_LORA\") is supported");
    }
  }

  private static int rank(Path file, JsonNode root) {
    JsonNode r = root.get("r");
    if (r == null || r.isNull()) {
      throw bad(file, "r", "is missing; expected the LoRA rank, an integer >= 1");
    }
    if (!r.isIntegralNumber() || !r.canConvertToInt() || r.intValue() < 1) {
      throw bad(file, "r", "is " + r + "; expected an integer >= 1");
    }
    return r.intValue();
  }

  private static double positiveNumber(Path file, JsonNode root, String key) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      throw bad(file, key, "is missing; expected a number > 0");
    }
    if (!v.isNumber() || !(v.doubleValue() > 0) || !Double.isFinite(v.doubleValue())) {
      throw bad(file, key, "is " + v + "; expected a finite number > 0");
    }
    return v.doubleValue();
  }

  private static double dropout(Path file, JsonNode root) {
    JsonNode v = root.get("lora_dropout");
    if (v == null || v.isNull()) {
      return 0.0;
    }
    if (!v.isNumber() || !(v.doubleValue() >= 0 && v.doubleValue() < 1)) {
      throw bad(file, "lora_dropout", "is " + v + "; expected a number in [0, 1)");
    }
    return v.doubleValue();
  }

  private static boolean bool(Path file, JsonNode root, String key) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      return false;
    }
    if (!v.isBoolean()) {
      throw bad(file, key, "is " + v + "; expected true or false");
    }
    return v.booleanValue();
  }

  private static List<Projection> targets(Path file, JsonNode root) {
    String valid = validModules();
    JsonNode t = root.get("target_modules");
    if (t == null || t.isNull()) {
      throw bad(file, "target_modules", "is missing; expected a list of names among " + valid);
    }
    if (t.isTextual()) {
      throw bad(
          file,
          "target_modules",
          "is the string "
              + t
              + " (PEFT's regex / 'all-linear' form), which is not supported; expected a list of"
              + " names among "
              + valid);
    }
    if (!t.isArray() || t.isEmpty()) {
      throw bad(file, "target_modules", "is " + t + "; expected a non-empty list among " + valid);
    }
    List<Projection> out = new ArrayList<>();
    for (JsonNode e : t) {
      out.add(projection(file, e, valid));
    }
    return out;
  }

  private static Projection projection(Path file, JsonNode e, String valid) {
    if (e.isTextual()) {
      for (Projection p : Projection.values()) {
        if (moduleName(p).equals(e.textValue())) {
          return p;
        }
      }
    }
    throw bad(file, "target_modules", "names " + e + ", which is not one of " + valid);
  }

  private static String validModules() {
    return Arrays.toString(
        Arrays.stream(Projection.values()).map(PeftAdapterConfig::moduleName).toArray());
  }

  private static boolean isFalse(JsonNode n) {
    return n.isBoolean() && !n.booleanValue();
  }

  private static boolean isEmptyObject(JsonNode n) {
    return n.isObject() && n.isEmpty();
  }

  private static boolean isEmptyArray(JsonNode n) {
    return n.isArray() && n.isEmpty();
  }

  private static IllegalArgumentException bad(Path file, String key, String what) {
    return new IllegalArgumentException(file + ": " + key + " " + what);
  }

  private static String firstLine(String s) {
    if (s == null) {
      return "";
    }
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }
}
