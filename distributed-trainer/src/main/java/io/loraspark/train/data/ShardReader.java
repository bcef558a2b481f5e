package io.loraspark.train.data;

import io.loraspark.train.model.TokenRow;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.parquet.column.page.PageReadStore;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.convert.GroupRecordConverter;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.util.HadoopInputFile;
import org.apache.parquet.io.ColumnIOFactory;
import org.apache.parquet.io.MessageColumnIO;
import org.apache.parquet.io.RecordReader;
import org.apache.parquet.schema.GroupType;
import org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType.PrimitiveTypeName;
import org.apache.parquet.schema.Type;

/**
 * Reads the training shards that the preprocessing job writes, straight through Hadoop {@link
 * FileSystem} and the Parquet file reader: no SparkSession, so it runs inside Spark tasks. Any
 * Hadoop scheme works ({@code file:}, {@code hdfs:}, {@code s3a:} with hadoop-aws on the
 * classpath); a path without a scheme is a local file.
 *
 * <p>Only the columns below are read, by name; the shards' other columns (example_id, num_tokens,
 * …) are projected away. Array columns may use the standard 3-level Parquet LIST layout that Spark
 * writes or the legacy 2-level one.
 *
 * <p>Call order: {@link #shardFiles} (on the driver or in a task) → {@link #read} (in a task).
 */
public final class ShardReader {

  /** The directory under a preprocess output root that holds the shard files. */
  public static final String SHARDS_DIR = "shards";

  /** Token ids, array&lt;int&gt;. */
  public static final String INPUT_IDS = "input_ids";

  /** Hugging Face-aligned labels, array&lt;int&gt; (-100 where not scored). */
  public static final String LABELS = "labels";

  /** Packed-example index per token (1, 1, 2, …), array&lt;int&gt;. */
  public static final String SEGMENT_IDS = "segment_ids";

  /** {@link #TRAIN} or {@link #EVAL}, string. */
  public static final String SPLIT = "split";

  /** Value of {@link #SPLIT} for training rows. */
  public static final String TRAIN = "train";

  /** Value of {@link #SPLIT} for held-out rows. */
  public static final String EVAL = "eval";

  /** The columns read, in projection order. */
  public static final List<String> COLUMNS = List.of(INPUT_IDS, LABELS, SEGMENT_IDS, SPLIT);

  private static final String EXPECTED =
      "expected the preprocess output root (containing shards/), its shards/ directory or a"
          + " single .parquet file";

  private ShardReader() {}

  /**
   * The rows of some shard files, partitioned by split.
   *
   * @param train rows whose split is {@code train}, in file order then row order
   * @param eval rows whose split is {@code eval}, in file order then row order
   */
  public record Shards(List<TokenRow> train, List<TokenRow> eval) {
    public Shards {
      train = List.copyOf(train);
      eval = List.copyOf(eval);
    }
  }

  /**
   * The shard files under {@code uri}, sorted by file name.
   *
   * @param uri the preprocess output root (the directory containing {@code shards/}), the {@code
   *     shards/} directory itself, or one {@code .parquet} file; any Hadoop scheme, no scheme
   *     meaning the local file system
   * @param conf the Hadoop configuration that resolves the scheme (credentials, endpoints)
   * @return fully qualified URIs of every {@code *.parquet} file in the shard directory, ignoring
   *     names that start with {@code _} or {@code .} ({@code _SUCCESS}, checksum files)
   * @throws IllegalArgumentException naming the URI if it does not exist, is a file that is not
   *     Parquet, or its shard directory holds no Parquet file
   * @throws UncheckedIOException naming the URI if the file system cannot be listed
   */
  public static List<String> shardFiles(String uri, Configuration conf) {
    Path path = toHadoopPath(uri);
    try {
      FileSystem fs = path.getFileSystem(conf);
      FileStatus status = statusOrNull(fs, path);
      if (status == null) {
        throw new IllegalArgumentException(uri + " does not exist; " + EXPECTED);
      }
      if (status.isFile()) {
        if (!isShardName(status.getPath().getName())) {
          throw new IllegalArgumentException(
              uri + " is a file but not a .parquet file; " + EXPECTED);
        }
        return List.of(status.getPath().toString());
      }
      Path dir = status.getPath();
      FileStatus shards = statusOrNull(fs, new Path(dir, SHARDS_DIR));
      if (shards != null && shards.isDirectory()) {
        dir = shards.getPath();
      }
      List<String> files =
          Arrays.stream(fs.listStatus(dir))
              .filter(s -> s.isFile() && isShardName(s.getPath().getName()))
              .map(FileStatus::getPath)
              .sorted(Comparator.comparing(Path::getName))
              .map(Path::toString)
              .toList();
      if (files.isEmpty()) {
        throw new IllegalArgumentException(
            uri + ": no *.parquet files in " + dir + "; " + EXPECTED + " (run preprocess first)");
      }
      return files;
    } catch (IOException e) {
      throw new UncheckedIOException(uri + ": cannot list shard files: " + e.getMessage(), e);
    }
  }

  /**
   * Reads every row of {@code files}.
   *
   * @param files shard URIs, e.g. from {@link #shardFiles}; read in this order
   * @param conf the Hadoop configuration that resolves the schemes
   * @return the rows split by their {@code split} column, each list in file order then row order
   * @throws IllegalArgumentException naming the file and column, and listing the columns found, if
   *     a file lacks one of {@link #COLUMNS} or has it with another type; naming the file and the
   *     0-based row index within it if a row has a null array or element, arrays of different
   *     lengths, invalid segment ids or a split other than train/eval
   * @throws UncheckedIOException naming the file if it cannot be read
   */
  public static Shards read(List<String> files, Configuration conf) {
    return read(files, conf, null);
  }

  /**
   * {@link #read(List, Configuration)}, also checking every row against a model's {@code limits}.
   *
   * @throws IllegalArgumentException as {@link #read(List, Configuration)}, and naming the file and
   *     row of the first row with an id, label or example outside {@code limits}
   */
  public static Shards read(List<String> files, Configuration conf, TokenLimits limits) {
    List<TokenRow> train = new ArrayList<>();
    List<TokenRow> eval = new ArrayList<>();
    for (String file : files) {
      readFile(file, conf, limits, train, eval);
    }
    return new Shards(train, eval);
  }

  private static void readFile(
      String file,
      Configuration conf,
      TokenLimits limits,
      List<TokenRow> train,
      List<TokenRow> eval) {
    try (ParquetFileReader reader =
        ParquetFileReader.open(HadoopInputFile.fromPath(toHadoopPath(file), conf))) {
      MessageType fileSchema = reader.getFooter().getFileMetaData().getSchema();
      MessageType projection = projection(file, fileSchema);
      reader.setRequestedSchema(projection);
      MessageColumnIO columnIo = new ColumnIOFactory().getColumnIO(projection, fileSchema);
      long row = 0;
      PageReadStore rowGroup;
      while ((rowGroup = reader.readNextRowGroup()) != null) {
        RecordReader<Group> records =
            columnIo.getRecordReader(rowGroup, new GroupRecordConverter(projection));
        for (long i = 0; i < rowGroup.getRowCount(); i++, row++) {
          Group record = records.read();
          List<TokenRow> target = isEval(record, file, row) ? eval : train;
          target.add(tokenRow(record, file, row, limits));
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(file + ": cannot read Parquet shard: " + e.getMessage(), e);
    }
  }

  /** The file schema cut down to {@link #COLUMNS}, after checking their presence and types. */
  private static MessageType projection(String file, MessageType fileSchema) {
    List<Type> fields = new ArrayList<>();
    for (String column : COLUMNS) {
      if (!fileSchema.containsField(column)) {
        throw new IllegalArgumentException(
            file
                + " has no column "
                + column
                + "; columns found: "
                + fileSchema.getFields().stream().map(Type::getName).toList()
                + "; a shard needs "
                + COLUMNS
                + " as written by preprocess");
      }
      Type type = fileSchema.getType(column);
      boolean ok = column.equals(SPLIT) ? isString(type) : intListElement(type) != null;
      if (!ok) {
        throw new IllegalArgumentException(
            "Column "
                + column
                + " in "
                + file
                + " must be "
                + (column.equals(SPLIT) ? "string" : "array<int>")
                + " but was "
                + type.toString().replaceAll("\\s+", " ").trim());
      }
      fields.add(type);
    }
    return new MessageType(fileSchema.getName(), fields);
  }

  private static boolean isString(Type t) {
    return t.isPrimitive()
        && !t.isRepetition(Type.Repetition.REPEATED)
        && t.asPrimitiveType().getPrimitiveTypeName() == PrimitiveTypeName.BINARY
        && t.getLogicalTypeAnnotation()
            instanceof LogicalTypeAnnotation.StringLogicalTypeAnnotation;
  }

  /**
   * The int32 leaf of a LIST column, or null if {@code t} is not a list of int: 3-level {@code
   * group (LIST) { repeated group list { optional int32 element; } }} or legacy 2-level {@code
   * group (LIST) { repeated int32 array; }}.
   */
  private static Type intListElement(Type t) {
    if (t.isPrimitive()
        || !(t.getLogicalTypeAnnotation()
            instanceof LogicalTypeAnnotation.ListLogicalTypeAnnotation)
        || t.asGroupType().getFieldCount() != 1) {
      return null;
    }
    Type repeated = t.asGroupType().getType(0);
    if (!repeated.isRepetition(Type.Repetition.REPEATED)) {
      return null;
    }
    Type element = repeated;
    if (!repeated.isPrimitive()) {
      GroupType wrapper = repeated.asGroupType();
      element = wrapper.getFieldCount() == 1 ? wrapper.getType(0) : null;
    }
    boolean isInt32 =
        element != null
            && element.isPrimitive()
            && element.asPrimitiveType().getPrimitiveTypeName() == PrimitiveTypeName.INT32
            && (element.getLogicalTypeAnnotation() == null
                || element
                    .getLogicalTypeAnnotation()
                    .equals(LogicalTypeAnnotation.intType(32, true)));
    return isInt32 ? element : null;
  }

  private static boolean isEval(Group record, String file, long row) {
    String split = record.getFieldRepetitionCount(SPLIT) == 0 ? null : record.getString(SPLIT, 0);
    if (TRAIN.equals(split)) {
      return false;
    }
    if (EVAL.equals(split)) {
      return true;
    }
    throw badRow(
        file,
        row,
        SPLIT
            + " must be \""
            + TRAIN
            + "\" or \""
            + EVAL
            + "\" but was "
            + (split == null ? "null" : "\"" + split + "\""));
  }

  private static TokenRow tokenRow(Group record, String file, long row, TokenLimits limits) {
    int[] inputIds = ints(record, INPUT_IDS, file, row);
    int[] labels = ints(record, LABELS, file, row);
    int[] segmentIds = ints(record, SEGMENT_IDS, file, row);
    try {
      TokenRow r = new TokenRow(inputIds, labels, segmentIds);
      if (limits != null) {
        limits.check(r);
      }
      return r;
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(
          file + " row " + row + ": " + e.getMessage() + "; rerun preprocess to rewrite it", e);
    }
  }

  /** The values of one int-list column of one record, either LIST layout. */
  private static int[] ints(Group record, String column, String file, long row) {
    if (record.getFieldRepetitionCount(column) == 0) {
      throw badRow(file, row, column + " is null");
    }
    Group list = record.getGroup(column, 0);
    boolean twoLevel = list.getType().getType(0).isPrimitive();
    int[] values = new int[list.getFieldRepetitionCount(0)];
    for (int i = 0; i < values.length; i++) {
      if (twoLevel) {
        values[i] = list.getInteger(0, i);
        continue;
      }
      Group element = list.getGroup(0, i);
      if (element.getFieldRepetitionCount(0) == 0) {
        throw badRow(file, row, column + "[" + i + "] is null");
      }
      values[i] = element.getInteger(0, 0);
    }
    return values;
  }

  private static IllegalArgumentException badRow(String file, long row, String what) {
    return new IllegalArgumentException(
        file + " row " + row + ": " + what + "; rerun preprocess to rewrite it");
  }

  private static boolean isShardName(String name) {
    return name.endsWith(".parquet") && !name.startsWith("_") && !name.startsWith(".");
  }

  /** {@code uri} as a Hadoop path; without a scheme, an absolute {@code file:} path. */
  static Path toHadoopPath(String uri) {
    if (uri == null || uri.isBlank()) {
      throw new IllegalArgumentException("shard URI must not be empty; " + EXPECTED);
    }
    Path path = new Path(uri);
    if (path.toUri().getScheme() != null) {
      return path;
    }
    return new Path(java.nio.file.Path.of(uri).toAbsolutePath().normalize().toUri());
  }

  private static FileStatus statusOrNull(FileSystem fs, Path path) throws IOException {
    try {
      return fs.getFileStatus(path);
    } catch (FileNotFoundException e) {
      return null;
    }
  }
}
