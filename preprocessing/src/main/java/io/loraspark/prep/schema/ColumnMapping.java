package io.loraspark.prep.schema;

import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * A user mapping of arbitrary columns onto prompt/context/response/system, parsed from {@code
 * prompt=question,response=answer[,input=details][,system=persona]}.
 *
 * @param prompt the prompt (instruction) column
 * @param context the context (input) column, or null
 * @param response the response (output) column
 * @param system the system-prompt column, or null
 */
public record ColumnMapping(String prompt, String context, String response, String system)
    implements Serializable {

  private static final Map<String, String> KEYS =
      Map.of(
          "prompt", "prompt",
          "instruction", "prompt",
          "input", "context",
          "context", "context",
          "response", "response",
          "output", "response",
          "system", "system");

  /**
   * Parses {@code key=column} pairs separated by commas. Keys: prompt (or instruction), response
   * (or output), input (or context), system.
   *
   * @throws IllegalArgumentException on an unknown key, a pair without '=', a repeated key or a
   *     missing prompt or response
   */
  public static ColumnMapping parse(String spec) {
    Map<String, String> columns = new LinkedHashMap<>();
    for (String pair : spec.split(",")) {
      int eq = pair.indexOf('=');
      if (eq <= 0 || eq == pair.length() - 1) {
        throw new IllegalArgumentException(
            "--columns entry \"" + pair.strip() + "\" must be key=column, e.g. prompt=question");
      }
      String key = pair.substring(0, eq).strip().toLowerCase(Locale.ROOT);
      String role = KEYS.get(key);
      if (role == null) {
        throw new IllegalArgumentException(
            "--columns key \""
                + key
                + "\" is unknown; valid keys are "
                + Set.copyOf(KEYS.keySet()));
      }
      if (columns.put(role, pair.substring(eq + 1).strip()) != null) {
        throw new IllegalArgumentException("--columns sets " + role + " twice");
      }
    }
    if (!columns.containsKey("prompt") || !columns.containsKey("response")) {
      throw new IllegalArgumentException(
          "--columns must map both prompt and response, e.g. prompt=question,response=answer;"
              + " got \""
              + spec
              + "\"");
    }
    return new ColumnMapping(
        columns.get("prompt"),
        columns.get("context"),
        columns.get("response"),
        columns.get("system"));
  }

  /** The mapper reading these columns. */
  public RecordMapper mapper() {
    return new FieldsMapper(prompt, context, response, system);
  }
}
