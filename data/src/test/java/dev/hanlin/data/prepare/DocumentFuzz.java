package dev.hanlin.data.prepare;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Runs a DocumentReader over fuzzer bytes and checks what the sink is told. */
final class DocumentFuzz {
  private DocumentFuzz() {}

  static void read(byte[] bytes, String extension, String field) throws IOException {
    Path file = Files.createTempFile("fuzz", extension);
    long lines = 1;
    for (byte b : bytes) if (b == '\n' || b == '\r') lines++;
    long maxLine = lines;
    try {
      Files.write(file, bytes);
      DocumentReader.Sink sink =
          new DocumentReader.Sink() {
            @Override
            public void document(String text, long line) {
              if (text == null || line < 1 || line > maxLine)
                throw new IllegalStateException("document on line " + line + " of " + maxLine);
            }

            @Override
            public void bad(DocumentReader.Bad kind, long line, String detail) {
              if (kind == null || line < 0 || line > maxLine)
                throw new IllegalStateException("bad record on line " + line + " of " + maxLine);
            }
          };
      try {
        new DocumentReader(file, new DocumentReader.Options(field, false, true)).readAll(sink);
      } catch (IOException e) {
        // the reader's own error (e.g. Csv.MalformedCsv in a header), naming the file
      }
    } finally {
      Files.deleteIfExists(file);
    }
  }
}
