package io.loraspark.prep.schema;

import java.util.Locale;

/** Speaker of a turn; {@link #jinjaName()} is the role name chat templates expect. */
public enum Role {
  /** Instructions that frame the conversation; only as the first turn. */
  SYSTEM,
  /** The prompt side: never scored. */
  USER,
  /** The response side: scored. */
  ASSISTANT;

  /** {@code system}, {@code user} or {@code assistant}. */
  public String jinjaName() {
    return name().toLowerCase(Locale.ROOT);
  }
}
