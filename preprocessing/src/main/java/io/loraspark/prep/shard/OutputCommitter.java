package io.loraspark.prep.shard;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Writes a run's outputs into a hidden staging directory under the output ({@code
 * _staging-<uuid>/}) and swaps them in at the end, so a rerun replaces the previous outputs and a
 * failed run leaves nothing that looks complete.
 *
 * <p>Commit order: delete {@code manifest.json} (from then on the directory is visibly incomplete),
 * replace {@code shards/} and {@code rejected/} by renames, then write the manifest (to a temporary
 * name, renamed last). Readers must treat an output without {@code manifest.json} as incomplete.
 * Usage: {@link #begin} → write under {@link #staging} → {@link #commit} → {@link #close} (which
 * removes the staging directory whether or not the run committed).
 */
public final class OutputCommitter implements AutoCloseable {

  /** Shard directory name. */
  public static final String SHARDS = "shards";

  /** Rejected-rows directory name. */
  public static final String REJECTED = "rejected";

  /** Manifest file name, written last. */
  public static final String MANIFEST = "manifest.json";

  private static final Pattern SPARK_PART = Pattern.compile("part-(\\d+)-.*\\.parquet");

  private final FileSystem fs;
  private final Path output;
  private final Path staging;

  private OutputCommitter(FileSystem fs, Path output, Path staging) {
    this.fs = fs;
    this.output = output;
    this.staging = staging;
  }

  /**
   * Creates the output directory if needed and a fresh staging directory inside it.
   *
   * @throws IllegalArgumentException if the output exists as a file or cannot be created
   */
  public static OutputCommitter begin(Configuration conf, String output) {
    Path out = new Path(output);
    try {
      FileSystem fs = out.getFileSystem(conf);
      if (fs.exists(out) && !fs.getFileStatus(out).isDirectory()) {
        throw new IllegalArgumentException("output " + output + " exists and is not a directory");
      }
      Path staging = new Path(out, "_staging-" + UUID.randomUUID());
      if (!fs.mkdirs(staging)) {
        throw new IllegalArgumentException("cannot create " + staging);
      }
      return new OutputCommitter(fs, fs.makeQualified(out), fs.makeQualified(staging));
    } catch (IOException e) {
      throw new IllegalArgumentException(
          "cannot write output " + output + ": " + e.getMessage(), e);
    }
  }

  /** URI of {@code name} inside the staging directory. */
  public String staging(String name) {
    return new Path(staging, name).toString();
  }

  /** URI of {@code name} in the final output. */
  public String output(String name) {
    return new Path(output, name).toString();
  }

  /**
   * Renames Spark's {@code part-NNNNN-<uuid>-cNNN.<codec>.parquet} files in staging directory
   * {@code name} to {@code part-NNNNN.parquet} (NNNNN = the Spark partition, i.e. the shard).
   *
   * @return the part files, sorted by name
   */
  public List<FileStatus> nameParts(String name) {
    Path dir = new Path(staging, name);
    try {
      List<FileStatus> parts = new ArrayList<>();
      for (FileStatus f : fs.listStatus(dir)) {
        Matcher m = SPARK_PART.matcher(f.getPath().getName());
        if (m.matches()) {
          Path target =
              new Path(dir, String.format("part-%05d.parquet", Integer.parseInt(m.group(1))));
          if (!fs.rename(f.getPath(), target)) {
            throw new IOException("rename " + f.getPath() + " → " + target + " failed");
          }
          parts.add(fs.getFileStatus(target));
        }
      }
      parts.sort(Comparator.comparing(f -> f.getPath().getName()));
      return parts;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot name the part files of " + dir, e);
    }
  }

  /** Swaps the staged directories in and writes the manifest last. */
  public void commit(String manifestJson, String... dirs) {
    try {
      fs.delete(new Path(output, MANIFEST), false);
      for (String dir : Arrays.asList(dirs)) {
        Path target = new Path(output, dir);
        fs.delete(target, true);
        if (!fs.rename(new Path(staging, dir), target)) {
          throw new IOException("rename " + new Path(staging, dir) + " → " + target + " failed");
        }
      }
      Path tmp = new Path(staging, MANIFEST);
      try (OutputStream o = fs.create(tmp, true)) {
        o.write(manifestJson.getBytes(StandardCharsets.UTF_8));
      }
      if (!fs.rename(tmp, new Path(output, MANIFEST))) {
        throw new IOException("rename " + tmp + " → " + new Path(output, MANIFEST) + " failed");
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot commit the outputs under " + output, e);
    }
  }

  /** Removes the staging directory. */
  @Override
  public void close() {
    try {
      fs.delete(staging, true);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot remove the staging directory " + staging, e);
    }
  }
}
