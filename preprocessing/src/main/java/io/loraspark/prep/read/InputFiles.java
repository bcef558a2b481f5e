package io.loraspark.prep.read;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocatedFileStatus;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RemoteIterator;
import org.apache.hadoop.io.compress.CompressionCodec;
import org.apache.hadoop.io.compress.CompressionCodecFactory;

/**
 * Resolves an input URI (a file, a directory searched recursively, or a glob) to its data files
 * through the Hadoop {@link FileSystem}, so {@code file:}, {@code hdfs:} and {@code s3a:} behave
 * alike. Files whose name starts with '_' or '.' are skipped (as Spark does), the rest sorted by
 * path: that order and the row number define input order.
 */
public final class InputFiles {

  /** Bytes read to sniff a file's format. */
  static final int SNIFF_BYTES = 1 << 20;

  private InputFiles() {}

  /**
   * The data files of {@code input} with their formats.
   *
   * @param conf Hadoop configuration (Spark's, so {@code spark.hadoop.*} settings apply)
   * @param input file, directory or glob
   * @param override the file format to use for every file, or {@link FileFormat#AUTO}
   * @throws IllegalArgumentException if the input does not exist, cannot be listed, holds no data
   *     files or only empty ones, or a file's format cannot be told
   */
  public static List<InputFile> resolve(Configuration conf, String input, FileFormat override) {
    Path root = new Path(input);
    try {
      FileSystem fs = root.getFileSystem(conf);
      List<FileStatus> files = list(fs, root, input);
      if (files.isEmpty()) {
        throw new IllegalArgumentException(
            "input " + input + " holds no data files (names starting with _ or . are skipped)");
      }
      if (files.stream().allMatch(f -> f.getLen() == 0)) {
        throw new IllegalArgumentException("input " + input + " is empty: every file has 0 bytes");
      }
      List<InputFile> out = new ArrayList<>(files.size());
      Path qualifiedRoot = fs.makeQualified(root);
      for (FileStatus f : files) {
        FileFormat format = override == FileFormat.AUTO ? detect(fs, conf, f) : override;
        out.add(
            new InputFile(
                out.size(),
                f.getPath().toString(),
                relativeName(qualifiedRoot, f.getPath(), files.size() == 1),
                format,
                f.getLen()));
      }
      return List.copyOf(out);
    } catch (IOException e) {
      throw new IllegalArgumentException(
          "cannot read input " + input + ": " + oneLine(e.getMessage()), e);
    }
  }

  private static List<FileStatus> list(FileSystem fs, Path root, String input) throws IOException {
    FileStatus[] matches;
    if (root.toString().matches(".*[*?\\[{].*")) {
      matches = fs.globStatus(root);
    } else {
      matches = fs.exists(root) ? new FileStatus[] {fs.getFileStatus(root)} : null;
    }
    if (matches == null || matches.length == 0) {
      throw new IllegalArgumentException("input " + input + " does not exist");
    }
    List<FileStatus> files = new ArrayList<>();
    for (FileStatus match : matches) {
      if (match.isDirectory()) {
        RemoteIterator<LocatedFileStatus> it = fs.listFiles(match.getPath(), true);
        while (it.hasNext()) {
          LocatedFileStatus f = it.next();
          if (!hidden(match.getPath(), f.getPath())) {
            files.add(f);
          }
        }
      } else if (!hidden(match.getPath().getParent(), match.getPath())) {
        files.add(match);
      }
    }
    files.sort(Comparator.comparing(f -> f.getPath().toString()));
    return files;
  }

  private static boolean hidden(Path root, Path file) {
    for (Path p = file; p != null && !p.equals(root); p = p.getParent()) {
      if (p.getName().startsWith("_") || p.getName().startsWith(".")) {
        return true;
      }
    }
    return false;
  }

  private static String relativeName(Path root, Path file, boolean single) {
    String relative = root.toUri().relativize(file.toUri()).getPath();
    return single || relative.isEmpty() || relative.startsWith("/") ? file.getName() : relative;
  }

  private static FileFormat detect(FileSystem fs, Configuration conf, FileStatus f)
      throws IOException {
    FileFormat byName = FileFormat.byExtension(f.getPath().getName());
    if (byName != FileFormat.AUTO && byName != FileFormat.JSON) {
      return byName;
    }
    byte[] head = head(fs, conf, f.getPath());
    if (head.length >= 4 && new String(head, 0, 4, StandardCharsets.ISO_8859_1).equals("PAR1")) {
      return FileFormat.PARQUET;
    }
    int first = firstNonBlank(head);
    if (first < head.length && head[first] == '[') {
      return FileFormat.JSON;
    }
    if (first < head.length && head[first] == '{') {
      return firstLineIsObject(head, first) ? FileFormat.JSONL : FileFormat.JSON;
    }
    if (byName == FileFormat.JSON || f.getLen() == 0) {
      return FileFormat.JSON;
    }
    throw new IllegalArgumentException(
        "cannot tell the format of "
            + f.getPath()
            + " from its name or first bytes; pass --input-format jsonl|json|parquet|csv");
  }

  private static byte[] head(FileSystem fs, Configuration conf, Path path) throws IOException {
    CompressionCodec codec = new CompressionCodecFactory(conf).getCodec(path);
    try (InputStream raw = fs.open(path);
        InputStream in = codec == null ? raw : codec.createInputStream(raw)) {
      return in.readNBytes(SNIFF_BYTES);
    }
  }

  private static int firstNonBlank(byte[] head) {
    int i = head.length >= 3 && (head[0] & 0xff) == 0xEF && (head[1] & 0xff) == 0xBB ? 3 : 0;
    while (i < head.length && Character.isWhitespace(head[i])) {
      i++;
    }
    return i;
  }

  private static boolean firstLineIsObject(byte[] head, int from) {
    int end = from;
    while (end < head.length && head[end] != '\n') {
      end++;
    }
    try {
      return StrictJson.MAPPER.readTree(head, from, end - from).isObject();
    } catch (IOException e) {
      return false;
    }
  }

  static String oneLine(String message) {
    return message == null ? "" : message.strip().replaceAll("\\s*\\R\\s*", " ");
  }
}
