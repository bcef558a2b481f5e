package io.loraspark.pipeline.cli;

import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * One {@code --adapter [NAME=]DIR[:WEIGHT]} of {@code generate} and {@code compose}: a PEFT adapter
 * directory (a path, or any Hadoop FileSystem URI such as {@code s3a://bucket/a1}), the name a
 * request uses for it (default: the directory's last segment) and its weight in the composition
 * (default 1). A weight is read only after the last {@code :} and only when numeric, since URIs
 * contain colons.
 *
 * @param name how it is named in the cache and the output
 * @param source the directory or URI
 * @param weight its weight, finite (a double, as compose folds and records it; decoding takes it as
 *     a float)
 */
record AdapterSpec(String name, String source, double weight) {
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");
  private static final Pattern NUMBER =
      Pattern.compile("[-+]?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d+)?");

  /**
   * Parses one option value.
   *
   * @throws IllegalArgumentException naming the value and the valid form
   */
  static AdapterSpec parse(String spec) {
    String rest = spec;
    String name = null;
    int eq = rest.indexOf('=');
    if (eq > 0 && NAME.matcher(rest.substring(0, eq)).matches()) {
      name = rest.substring(0, eq);
      rest = rest.substring(eq + 1);
    }
    double weight = 1;
    int colon = rest.lastIndexOf(':');
    if (colon > 0 && NUMBER.matcher(rest.substring(colon + 1)).matches()) {
      weight = Double.parseDouble(rest.substring(colon + 1));
      rest = rest.substring(0, colon);
    }
    if (rest.isBlank() || !Double.isFinite(weight) || !Float.isFinite((float) weight)) {
      throw new IllegalArgumentException(
          "--adapter '" + spec + "': expected [NAME=]DIR[:WEIGHT], e.g. support=adapters/a1:0.5");
    }
    if (name == null) {
      String trimmed = rest.replaceAll("/+$", "");
      Path last = Path.of(trimmed.substring(trimmed.lastIndexOf('/') + 1));
      name = last.toString().isEmpty() ? trimmed : last.toString();
    }
    return new AdapterSpec(name, rest, weight);
  }
}
