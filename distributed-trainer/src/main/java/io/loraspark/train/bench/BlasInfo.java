package io.loraspark.train.bench;

import com.sun.jna.Function;
import com.sun.jna.Library;
import com.sun.jna.NativeLibrary;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;
import java.util.Optional;

/**
 * The OpenBLAS build and kernel ND4J runs on. The OpenBLAS bundled with ND4J picks its kernels by
 * CPU model at load time and misdetects recent AMD CPUs, falling back to slow kernels unless {@code
 * OPENBLAS_CORETYPE} (e.g. {@code Haswell}, {@code SkylakeX}) names one; reporting the core in use
 * makes a slow run explainable.
 *
 * <p>JavaCPP's OpenBLAS preset does not map {@code openblas_get_corename}, so it is called through
 * JNA on the library file this process already loaded (found in {@code /proc/self/maps}), opened
 * with {@code RTLD_NOLOAD | RTLD_LAZY} and without {@code RTLD_GLOBAL}: nothing new is loaded and
 * no symbol is made global. (Opening it {@code RTLD_GLOBAL}, JNA's default, lets the second
 * OpenBLAS copy JavaCPP also loads interpose on ND4J's, which then frees buffers into the wrong
 * table: "BLAS : Bad memory unallocation" and a crash in the next GEMM.)
 *
 * @param coreName the kernel family OpenBLAS selected, or "unknown"
 * @param config OpenBLAS build configuration ({@code openblas_get_config}), or ""
 * @param library path of the queried OpenBLAS library, or ""
 * @param coretypeEnv the {@code OPENBLAS_CORETYPE} environment variable, or "" when unset
 */
public record BlasInfo(String coreName, String config, String library, String coretypeEnv) {
  private static final Path MAPS = Path.of("/proc/self/maps");
  private static final int RTLD_LAZY = 0x1;
  private static final int RTLD_NOLOAD = 0x4;

  /** Queries the OpenBLAS ND4J uses in this process (call after ND4J initialised its backend). */
  public static BlasInfo detect() {
    String env = Optional.ofNullable(System.getenv("OPENBLAS_CORETYPE")).orElse("");
    Optional<String> lib = loadedOpenBlas();
    if (lib.isEmpty()) {
      return new BlasInfo("unknown", "", "", env);
    }
    NativeLibrary blas =
        NativeLibrary.getInstance(
            lib.get(), Map.of(Library.OPTION_OPEN_FLAGS, RTLD_LAZY | RTLD_NOLOAD));
    return new BlasInfo(
        call(blas, "openblas_get_corename"), call(blas, "openblas_get_config"), lib.get(), env);
  }

  private static String call(NativeLibrary blas, String name) {
    Function f = blas.getFunction(name);
    return String.valueOf(f.invokeString(new Object[0], false)).trim();
  }

  /** ND4J's BLAS is the no-LAPACK build; the full build is preferred only when it is alone. */
  private static Optional<String> loadedOpenBlas() {
    if (!Files.isReadable(MAPS)) {
      return Optional.empty();
    }
    try (var lines = Files.lines(MAPS)) {
      return lines
          .filter(l -> l.indexOf('/') >= 0)
          .map(l -> l.substring(l.indexOf('/')))
          .filter(p -> Path.of(p).getFileName().toString().startsWith("libopenblas"))
          .distinct()
          .min(Comparator.comparing(p -> p.contains("nolapack") ? 0 : 1));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + MAPS, e);
    }
  }
}
