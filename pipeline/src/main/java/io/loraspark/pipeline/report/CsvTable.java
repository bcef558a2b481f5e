package io.loraspark.pipeline.report;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A CSV file with a header row, parsed per RFC 4180: fields separated by commas, records by CRLF or
 * LF, a field in double quotes may hold commas, line breaks and doubled quotes ({@code ""}). An
 * empty field is {@code null} ({@link io.loraspark.pipeline.sweep.Leaderboard} writes null as
 * empty).
 *
 * @param file where it was read from, for error messages
 * @param header the column names, in file order
 * @param rows one list per record, each as long as {@code header}
 */
public record CsvTable(String file, List<String> header, List<List<String>> rows) {
  public CsvTable {
    header = List.copyOf(header);
    rows = List.copyOf(rows);
  }

  /**
   * Reads {@code file}, requiring every column of {@code required} in its header.
   *
   * @throws IllegalArgumentException if the file is missing, malformed, or lacks a required column
   */
  public static CsvTable read(Path file, List<String> required) {
    String text;
    try {
      text = Files.readString(file, StandardCharsets.UTF_8);
    } catch (NoSuchFileException e) {
      throw new IllegalArgumentException("missing " + file + ": not a sweep run directory?", e);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
    }
    CsvTable t = parse(file.toString(), text);
    for (String c : required) {
      if (!t.header.contains(c)) {
        throw new IllegalArgumentException(
            file + ": missing column " + c + "; header is " + String.join(",", t.header));
      }
    }
    return t;
  }

  /** Parses {@code text}; {@code name} only labels errors. */
  public static CsvTable parse(String name, String text) {
    List<List<String>> records = records(name, text);
    if (records.isEmpty()) {
      throw new IllegalArgumentException(name + ": empty file, expected a header row");
    }
    List<String> header = records.get(0);
    List<List<String>> rows = records.subList(1, records.size());
    for (int i = 0; i < rows.size(); i++) {
      if (rows.get(i).size() != header.size()) {
        throw new IllegalArgumentException(
            String.format(
                "%s: record %d has %d fields but the header has %d",
                name, i + 2, rows.get(i).size(), header.size()));
      }
    }
    return new CsvTable(name, header, rows);
  }

  /** The rows as column name → value maps (null for an empty field), in file order. */
  public List<Map<String, String>> maps() {
    List<Map<String, String>> out = new ArrayList<>(rows.size());
    for (List<String> r : rows) {
      Map<String, String> m = new HashMap<>();
      for (int i = 0; i < header.size(); i++) {
        m.put(header.get(i), r.get(i));
      }
      out.add(m);
    }
    return out;
  }

  private static List<List<String>> records(String name, String text) {
    List<List<String>> out = new ArrayList<>();
    List<String> record = new ArrayList<>();
    StringBuilder field = new StringBuilder();
    boolean quoted = false; // inside "..."
    boolean wasQuoted = false; // the current field was quoted, so "" is an empty string
    int line = 1;
    int n = text.length();
    for (int i = 0; i < n; i++) {
      char c = text.charAt(i);
      if (quoted) {
        if (c == '"' && i + 1 < n && text.charAt(i + 1) == '"') {
          field.append('"');
          i++;
        } else if (c == '"') {
          quoted = false;
        } else {
          line += c == '\n' ? 1 : 0;
          field.append(c);
        }
      } else if (c == '"' && field.length() == 0 && !wasQuoted) {
        quoted = true;
        wasQuoted = true;
      } else if (c == ',') {
        record.add(value(field, wasQuoted));
        wasQuoted = false;
      } else if (c == '\n' || c == '\r') {
        if (c == '\r' && i + 1 < n && text.charAt(i + 1) == '\n') {
          i++;
        }
        record.add(value(field, wasQuoted));
        wasQuoted = false;
        out.add(record);
        record = new ArrayList<>();
        line++;
      } else if (wasQuoted) {
        throw new IllegalArgumentException(
            name + ": line " + line + ": text after a closing quote; quote the whole field");
      } else {
        field.append(c);
      }
    }
    if (quoted) {
      throw new IllegalArgumentException(name + ": unterminated quoted field at end of file");
    }
    if (field.length() > 0 || wasQuoted || !record.isEmpty()) {
      record.add(value(field, wasQuoted));
      out.add(record);
    }
    return out;
  }

  private static String value(StringBuilder field, boolean wasQuoted) {
    String s = field.toString();
    field.setLength(0);
    return s.isEmpty() && !wasQuoted ? null : s;
  }
}
