package io.loraspark.train.cache;

import io.loraspark.train.io.AtomicFiles;
import io.loraspark.train.lora.PeftAdapter;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.UnsupportedFileSystemException;

/**
 * Copies an adapter directory from any Hadoop {@link FileSystem} URI ({@code hdfs:}, {@code s3a:}
 * with hadoop-aws on the classpath, {@code file:}, ...) into a fresh local temporary directory.
 * Only the files an adapter directory has are copied: {@link #REQUIRED} and, when present, {@link
 * #OPTIONAL}; anything else in the remote directory is ignored. Stateless and thread-safe.
 */
final class HadoopAdapterCopy {

  /** Files every adapter directory has. */
  static final List<String> REQUIRED = List.of(PeftAdapter.CONFIG_FILE, PeftAdapter.WEIGHTS_FILE);

  /**
   * Files copied when present (Delta-LoRA's README that says it is not a PEFT adapter, a child's
   * record of its parent).
   */
  static final List<String> OPTIONAL =
      List.of(PeftAdapter.DELTA_README, io.loraspark.train.lora.AdapterChain.FILE);

  /** Every file an adapter directory may have that a loader reads: required, then optional. */
  static final List<String> ADAPTER_FILES =
      List.of(
          PeftAdapter.CONFIG_FILE,
          PeftAdapter.WEIGHTS_FILE,
          PeftAdapter.DELTA_README,
          io.loraspark.train.lora.AdapterChain.FILE);

  private HadoopAdapterCopy() {}

  /**
   * Copies the adapter directory at {@code uri} into a new directory under {@code tempParent}.
   *
   * @param uri a Hadoop URI with a scheme, naming an adapter directory
   * @param conf the Hadoop configuration that resolves the scheme (credentials, endpoints)
   * @param tempParent the local directory the copy is created in (it must exist)
   * @return the copy; closing it deletes it
   * @throws IllegalArgumentException naming the URI if no file system serves its scheme, it does
   *     not exist, is not a directory or lacks one of {@link #REQUIRED}
   * @throws UncheckedIOException naming the URI if listing or copying fails; nothing is left under
   *     {@code tempParent} then
   */
  static LocalAdapterDir copy(String uri, Configuration conf, java.nio.file.Path tempParent) {
    Path src = new Path(uri);
    FileSystem fs = fileSystem(uri, src, conf);
    try {
      FileStatus dir = statusOrNull(fs, src);
      if (dir == null || !dir.isDirectory()) {
        throw new IllegalArgumentException(
            "adapter URI "
                + uri
                + (dir == null ? " does not exist" : " is a file, not a directory")
                + "; give the URI of an adapter directory holding "
                + REQUIRED);
      }
      List<String> missing = new ArrayList<>();
      for (String name : REQUIRED) {
        FileStatus f = statusOrNull(fs, new Path(src, name));
        if (f == null || !f.isFile()) {
          missing.add(name);
        }
      }
      if (!missing.isEmpty()) {
        throw new IllegalArgumentException(
            "adapter URI "
                + uri
                + " has no "
                + missing
                + "; an adapter directory holds "
                + REQUIRED);
      }
      return copyFiles(uri, fs, src, tempParent);
    } catch (IOException e) {
      throw new UncheckedIOException("adapter URI " + uri + ": cannot list it: " + e, e);
    }
  }

  private static LocalAdapterDir copyFiles(
      String uri, FileSystem fs, Path src, java.nio.file.Path tempParent) throws IOException {
    java.nio.file.Path copy = Files.createTempDirectory(tempParent, "adapter-copy-");
    try {
      List<String> names = new ArrayList<>(REQUIRED);
      for (String name : OPTIONAL) {
        FileStatus f = statusOrNull(fs, new Path(src, name));
        if (f != null && f.isFile()) {
          names.add(name);
        }
      }
      for (String name : names) {
        try (InputStream in = fs.open(new Path(src, name))) {
          Files.copy(in, copy.resolve(name));
        }
      }
      return new LocalAdapterDir(copy, uri, true);
    } catch (IOException | RuntimeException e) {
      deleteAfterFailure(copy, e);
      if (e instanceof IOException io) {
        throw new UncheckedIOException(
            "adapter URI " + uri + ": cannot copy it to " + copy + ": " + io, io);
      }
      throw e;
    }
  }

  private static FileSystem fileSystem(String uri, Path src, Configuration conf) {
    try {
      return src.getFileSystem(conf);
    } catch (UnsupportedFileSystemException e) {
      throw new IllegalArgumentException(
          "adapter URI "
              + uri
              + ": no Hadoop FileSystem for scheme "
              + src.toUri().getScheme()
              + " on the classpath (s3a needs hadoop-aws); use hdfs:, s3a: or file:",
          e);
    } catch (IOException e) {
      throw new UncheckedIOException(
          "adapter URI " + uri + ": cannot open its file system: " + e, e);
    }
  }

  private static void deleteAfterFailure(java.nio.file.Path copy, Exception primary) {
    try {
      AtomicFiles.deleteTree(copy);
    } catch (IOException e) {
      primary.addSuppressed(e);
    }
  }

  private static FileStatus statusOrNull(FileSystem fs, Path path) throws IOException {
    try {
      return fs.getFileStatus(path);
    } catch (FileNotFoundException e) {
      return null;
    }
  }
}
