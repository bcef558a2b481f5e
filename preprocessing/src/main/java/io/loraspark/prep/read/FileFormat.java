package io.loraspark.prep.read;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** How an input file is stored; {@link #AUTO} detects it from the extension, then the content. */
public enum FileFormat {
  /** By extension ({@code .jsonl .ndjson .json .parquet .csv .tsv}), else by the first bytes. */
  AUTO,
  /** One JSON object per line. */
  JSONL,
  /** One JSON array of objects (or one object) per file. */
  JSON,
  /** Parquet files; nested columns (e.g. messages) are kept. */
  PARQUET,
  /** CSV with a header row (TSV for {@code .tsv}). */
  CSV;

  /** Lower-case name for the command line and manifest. */
  public String cliName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /**
   * Parses a command-line name (case-insensitive).
   *
   * @throws IllegalArgumentException listing the valid names
   */
  public static FileFormat parse(String name) {
    return Arrays.stream(values())
        .filter(f -> f.name().equalsIgnoreCase(name.strip()))
        .findFirst()
        .orElseThrow(
            () ->
                new IllegalArgumentException(
                    "--input-format \""
                        + name
                        + "\" is unknown; valid input formats are "
                        + Arrays.stream(values())
                            .map(FileFormat::cliName)
                            .collect(Collectors.joining("|"))));
  }

  /**
   * The format of a file name by extension, ignoring a compression suffix ({@code .gz}, {@code
   * .bz2}, ...); {@link #AUTO} when the extension says nothing. A {@code .json} file is {@link
   * #JSON} here; {@link InputFiles} sniffs whether it is really JSON lines.
   */
  public static FileFormat byExtension(String fileName) {
    String name = fileName.toLowerCase(Locale.ROOT).replaceAll("\\.(gz|bz2|deflate|zst|lz4)$", "");
    if (name.endsWith(".jsonl") || name.endsWith(".ndjson")) {
      return JSONL;
    }
    if (name.endsWith(".json")) {
      return JSON;
    }
    if (name.endsWith(".parquet")) {
      return PARQUET;
    }
    if (name.endsWith(".csv") || name.endsWith(".tsv")) {
      return CSV;
    }
    return AUTO;
  }
}
