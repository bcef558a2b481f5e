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
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The JSON side of {@code adapter_config.json} shared by every {@link PeftCodec}: reading strictly
 * (duplicate keys and trailing tokens refused), writing as Python's {@code json.dumps(indent=2,
 * sort_keys=True)} does, and the typed key readers whose messages name the file and key.
 */
final class PeftJson {
  static final ObjectMapper READER =
      JsonMapper.builder(
              JsonFactory.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build())
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .build();

  static final ObjectMapper WRITER = new ObjectMapper();

  private PeftJson() {}

  /**
   * {@code file} as a JSON object.
   *
   * @throws IllegalArgumentException naming the file (and the line and column) when it is missing,
   *     not valid JSON or not an object
   * @throws UncheckedIOException naming the file if it cannot be read
   */
  static JsonNode readObject(Path file) {
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException(
          file
              + " is missing; a PEFT LoRA adapter directory holds "
              + PeftAdapterConfig.FILE
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
    return root;
  }

  /**
   * {@code n} as Python writes it: keys sorted (except inside the top-level values named in {@code
   * keepOrder}), two-space indent, {@code ": "} and {@code ","} separators, ASCII escapes.
   */
  static String render(ObjectNode n, Set<String> keepOrder) {
    try {
      return WRITER
          .writer(pythonStyle())
          .with(new PythonEscapes())
          .writeValueAsString(sorted(n, keepOrder));
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(
          "cannot render " + PeftAdapterConfig.FILE + ": " + e.getOriginalMessage(), e);
    }
  }

  /**
   * {@code n} with the keys of every object sorted, as Python's {@code sort_keys=True}, except
   * inside the top-level values named in {@code keepOrder}.
   */
  private static JsonNode sorted(JsonNode n, Set<String> keepOrder) {
    if (n.isObject()) {
      ObjectNode out = WRITER.createObjectNode();
      List<String> names = new ArrayList<>();
      n.fieldNames().forEachRemaining(names::add);
      names.sort(null);
      for (String k : names) {
        out.set(k, keepOrder.contains(k) ? n.get(k) : sorted(n.get(k), Set.of()));
      }
      return out;
    }
    return n;
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

  static int rank(Path file, JsonNode root) {
    JsonNode r = root.get("r");
    if (r == null || r.isNull()) {
      throw PeftAdapterConfig.bad(file, "r", "is missing; expected the LoRA rank, an integer >= 1");
    }
    if (!r.isIntegralNumber() || !r.canConvertToInt() || r.intValue() < 1) {
      throw PeftAdapterConfig.bad(file, "r", "is " + r + "; expected an integer >= 1");
    }
    return r.intValue();
  }

  static double positiveNumber(Path file, JsonNode root, String key) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      throw PeftAdapterConfig.bad(file, key, "is missing; expected a number > 0");
    }
    if (!v.isNumber() || !(v.doubleValue() > 0) || !Double.isFinite(v.doubleValue())) {
      throw PeftAdapterConfig.bad(file, key, "is " + v + "; expected a finite number > 0");
    }
    return v.doubleValue();
  }

  static double dropout(Path file, JsonNode root, String key) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      return 0.0;
    }
    if (!v.isNumber() || !(v.doubleValue() >= 0 && v.doubleValue() < 1)) {
      throw PeftAdapterConfig.bad(file, key, "is " + v + "; expected a number in [0, 1)");
    }
    return v.doubleValue();
  }

  static boolean bool(Path file, JsonNode root, String key) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      return false;
    }
    if (!v.isBoolean()) {
      throw PeftAdapterConfig.bad(file, key, "is " + v + "; expected true or false");
    }
    return v.booleanValue();
  }

  static int intOr(Path file, JsonNode root, String key, int dflt) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.isIntegralNumber() || !v.canConvertToInt() || v.intValue() < 1) {
      throw PeftAdapterConfig.bad(file, key, "is " + v + "; expected an integer >= 1");
    }
    return v.intValue();
  }

  static boolean isFalse(JsonNode n) {
    return n.isBoolean() && !n.booleanValue();
  }

  static boolean isEmptyArray(JsonNode n) {
    return n.isArray() && n.isEmpty();
  }

  private static String firstLine(String s) {
    if (s == null) {
      return "";
    }
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }
}
