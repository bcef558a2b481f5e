package io.loraspark.pipeline.report;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.loraspark.pipeline.sweep.Leaderboard;
import io.loraspark.train.loop.AdapterStatus;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a sweep run directory holds, read back and checked: the leaderboard (best first), each
 * adapter's loss curve and {@code run.json}. The file contracts are {@link Leaderboard} (which
 * reads and checks the leaderboard) and {@link io.loraspark.pipeline.sweep.MetricsTable}.
 *
 * @param dir the run directory
 * @param run {@code run.json}
 * @param board the leaderboard rows in file order (rank 1 first)
 * @param curves metrics rows per adapter id (replicas under their own {@code <id>-repN}), in first
 *     appearance order, each sorted by step
 */
public record RunData(Path dir, JsonNode run, List<Row> board, Map<String, List<Point>> curves) {
  static final String LEADERBOARD = Leaderboard.CSV;
  static final String METRICS = "metrics.csv";
  static final String RUN_JSON = "run.json";

  private static final List<String> METRIC_COLUMNS =
      List.of("adapter_id", "step", "train_loss", "eval_loss");

  /** One leaderboard row: its cells by column name, null where empty. */
  public record Row(List<String> columns, Map<String, String> cells) {
    public String text(String column) {
      return cells.get(column);
    }

    /** The column as a number, NaN when empty or absent. */
    public double number(String column) {
      String s = cells.get(column);
      return s == null ? Double.NaN : Double.parseDouble(s);
    }

    public String id() {
      return cells.get("adapter_id");
    }

    public AdapterStatus status() {
      return AdapterStatus.parse(cells.get("status"));
    }
  }

  /** One metrics row; a loss is NaN where it was not measured. */
  public record Point(int step, double trainLoss, double evalLoss) {}

  /**
   * Reads and checks a run directory.
   *
   * @throws IllegalArgumentException naming the file (and row, column) when the directory, a file
   *     or a value is missing or malformed
   */
  public static RunData load(Path dir) {
    if (!Files.isDirectory(dir)) {
      throw new IllegalArgumentException(
          "run directory " + dir + " does not exist or is not a directory");
    }
    JsonNode run = readJson(dir.resolve(RUN_JSON));
    CsvTable board = Leaderboard.read(dir.resolve(LEADERBOARD));
    List<Row> rows = new ArrayList<>();
    for (Map<String, String> m : board.maps()) {
      rows.add(new Row(board.header(), m));
    }
    return new RunData(dir, run, List.copyOf(rows), curves(dir.resolve(METRICS)));
  }

  /** {@code run_id} from run.json, else the directory's name. */
  public String runId() {
    String id = run.path("run_id").asText("");
    return id.isEmpty() ? String.valueOf(dir.getFileName()) : id;
  }

  /** run.json, indented. */
  public String prettyRunJson() {
    try {
      return new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(run);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot print run.json of " + dir, e);
    }
  }

  /** Rows with the given status, in leaderboard order. */
  public List<Row> withStatus(AdapterStatus status) {
    return board.stream().filter(r -> r.status() == status).toList();
  }

  private static Map<String, List<Point>> curves(Path file) {
    CsvTable t = CsvTable.read(file, METRIC_COLUMNS);
    Map<String, List<Point>> out = new LinkedHashMap<>();
    List<Map<String, String>> maps = t.maps();
    for (int i = 0; i < maps.size(); i++) {
      Map<String, String> m = maps.get(i);
      for (String c : METRIC_COLUMNS.subList(1, METRIC_COLUMNS.size())) {
        checkNumber(file, i + 2, c, m.get(c));
      }
      if (m.get("adapter_id") == null || m.get("step") == null) {
        throw new IllegalArgumentException(
            file + ": row " + (i + 2) + " has no adapter_id or step");
      }
      out.computeIfAbsent(m.get("adapter_id"), k -> new ArrayList<>())
          .add(
              new Point(
                  (int) Double.parseDouble(m.get("step")),
                  orNaN(m.get("train_loss")),
                  orNaN(m.get("eval_loss"))));
    }
    out.values().forEach(l -> l.sort(java.util.Comparator.comparingInt(Point::step)));
    return out;
  }

  private static double orNaN(String s) {
    return s == null ? Double.NaN : Double.parseDouble(s);
  }

  private static void checkNumber(Path file, int row, String column, String value) {
    if (value == null) {
      return;
    }
    try {
      Double.parseDouble(value);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          file + ": row " + row + ": " + column + " must be a number but was '" + value + "'");
    }
  }

  private static JsonNode readJson(Path file) {
    try {
      JsonNode n = new ObjectMapper().readTree(Files.readString(file, StandardCharsets.UTF_8));
      if (n == null || !n.isObject()) {
        throw new IllegalArgumentException(file + ": must hold a JSON object");
      }
      return n;
    } catch (NoSuchFileException e) {
      throw new IllegalArgumentException("missing " + file + ": not a sweep run directory?", e);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(file + ": not valid JSON: " + e.getOriginalMessage(), e);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
    }
  }
}
