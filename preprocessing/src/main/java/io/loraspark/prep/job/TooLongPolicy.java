package io.loraspark.prep.job;

import java.util.Arrays;
import java.util.Locale;

/** What to do with an example longer than max_seq_len. */
public enum TooLongPolicy {
  /** Keep the first max_seq_len tokens (rejected if no scored token is left). */
  TRUNCATE,
  /** Reject it ({@code too_long}). */
  REJECT;

  /** Lower-case name. */
  public String cliName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /**
   * Parses a command-line name.
   *
   * @throws IllegalArgumentException listing the valid names
   */
  public static TooLongPolicy parse(String name) {
    return Arrays.stream(values())
        .filter(p -> p.name().equalsIgnoreCase(name.strip()))
        .findFirst()
        .orElseThrow(
            () ->
                new IllegalArgumentException(
                    "--on-too-long \"" + name + "\" is unknown; valid values are truncate|reject"));
  }
}
