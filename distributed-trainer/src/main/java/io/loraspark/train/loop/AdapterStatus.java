package io.loraspark.train.loop;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonValue;
import java.util.Arrays;

/**
 * What became of one adapter of a run, in the order the leaderboard lists them: trained to its
 * steps, stopped at a rung by successive halving, or stopped by a failure (a non-finite loss or
 * gradient, a task that never reported). Its {@link #fileName} is the spelling in leaderboard.csv,
 * run.json, round journals, {@code lora_spark.json} and the CLI's JSON; no other code spells it.
 */
public enum AdapterStatus {
  OK("ok"),
  PRUNED("pruned"),
  FAILED("failed");

  private final String fileName;

  AdapterStatus(String fileName) {
    this.fileName = fileName;
  }

  /** The spelling in the run's files and JSON. */
  @JsonValue
  public String fileName() {
    return fileName;
  }

  /**
   * The status a file spells {@code name}.
   *
   * @throws IllegalArgumentException naming the valid spellings
   */
  @JsonCreator
  public static AdapterStatus parse(String name) {
    for (AdapterStatus s : values()) {
      if (s.fileName.equals(name)) {
        return s;
      }
    }
    throw new IllegalArgumentException(
        "status '"
            + name
            + "' is not one of "
            + Arrays.stream(values()).map(AdapterStatus::fileName).toList());
  }

  /** The status of an adapter that stopped with {@code failure} (empty when it did not fail). */
  public static AdapterStatus of(String failure) {
    return failure.isEmpty() ? OK : FAILED;
  }

  @Override
  public String toString() {
    return fileName;
  }
}
