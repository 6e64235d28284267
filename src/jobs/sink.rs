//! Where an export's rows go. One `Sink` over the job's `.part` file for every format, so the
//! worker's keyset loop is the same for CSV and XLSX: the `Presenter` makes the fields, the
//! sink only lays them out. Memory stays flat in both: CSV streams through a buffer, XLSX
//! uses rust_xlsxwriter's constant-memory sheets, which keep one row in memory and spill the
//! rest to a temporary file until the workbook is zipped into the `.part` file at the end.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use flate2::write::GzEncoder;
use rust_xlsxwriter::{Format, Workbook};

use crate::domain::{export_cell, ExportFormat};

/// Rows of one Excel sheet, its header row included; the export goes on in a new sheet after.
pub const XLSX_SHEET_ROWS: u32 = 1_048_576;

/// Excel refuses a cell longer than this (counted in UTF-16 units).
const XLSX_CELL_MAX: usize = 32_767;

const BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

pub struct Sink {
    inner: Inner,
    mask: bool,
}

/// Boxed: the writers are hundreds of bytes each, and a sink is made once per export.
enum Inner {
    Csv(Box<csv::Writer<BufWriter<File>>>),
    CsvGzip(Box<csv::Writer<GzEncoder<BufWriter<File>>>>),
    Xlsx(Box<XlsxSink>),
}

impl Sink {
    /// Creates the file at `path`; gzip applies to CSV only (an XLSX file is a zip already).
    pub fn create(path: &Path, format: ExportFormat, gzip: bool) -> anyhow::Result<Sink> {
        let mut file = BufWriter::with_capacity(256 * 1024, File::create(path)?);
        let inner = match format {
            ExportFormat::Csv if gzip => {
                let mut gz = GzEncoder::new(file, flate2::Compression::fast());
                gz.write_all(BOM)?;
                Inner::CsvGzip(Box::new(csv::Writer::from_writer(gz)))
            }
            ExportFormat::Csv => {
                file.write_all(BOM)?;
                Inner::Csv(Box::new(csv::Writer::from_writer(file)))
            }
            ExportFormat::Xlsx => {
                // The sheets' spill files go beside the export: that disk was chosen to
                // hold exports, and /tmp may be small or in memory.
                let dir = path.parent().unwrap_or(Path::new("."));
                Inner::Xlsx(Box::new(XlsxSink::new(file, dir, XLSX_SHEET_ROWS)?))
            }
        };
        Ok(Sink { inner, mask: false })
    }

    /// The column names; in XLSX bold, frozen, and repeated at the top of every sheet.
    pub fn header(&mut self, fields: Vec<String>) -> anyhow::Result<()> {
        match &mut self.inner {
            Inner::Xlsx(x) => x.header(fields),
            _ => self.record(&fields),
        }
    }

    /// Masks the addresses inside every cell from now on (the account masks them).
    pub fn mask_addresses(&mut self, mask: bool) {
        self.mask = mask;
    }

    /// One row; every cell goes through [`export_cell`]: no formula, and no full address
    /// when the account masks them.
    pub fn record<S: AsRef<str>>(&mut self, fields: &[S]) -> anyhow::Result<()> {
        let cells: Vec<std::borrow::Cow<'_, str>> = fields
            .iter()
            .map(|f| export_cell(f.as_ref(), self.mask))
            .collect();
        let bytes = cells.iter().map(|f| f.as_bytes());
        match &mut self.inner {
            Inner::Csv(w) => w.write_record(bytes)?,
            Inner::CsvGzip(w) => w.write_record(bytes)?,
            Inner::Xlsx(x) => x.record(&cells)?,
        }
        Ok(())
    }

    /// Completes the file and syncs it to disk, so that a rename after it never exposes a
    /// partial file under the final name.
    pub fn finish(self) -> anyhow::Result<()> {
        let file = match self.inner {
            Inner::Csv(w) => w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?,
            Inner::CsvGzip(w) => w
                .into_inner()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .finish()?,
            Inner::Xlsx(x) => x.finish()?,
        };
        file.into_inner()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .sync_all()?;
        Ok(())
    }
}

/// An XLSX workbook written sheet after sheet in constant-memory mode.
///
/// Every value is written as text, exactly as the CSV has it: times are already in the
/// account's zone and in a `YYYY-MM-DD HH:MM:SS` form that sorts and filters correctly as
/// text, whereas Excel date serials carry no zone and would need a second formatting path;
/// codes like `sub_stat` or a numeric tag keep their exact spelling (no lost leading zeros).
struct XlsxSink {
    file: BufWriter<File>,
    book: Workbook,
    /// Index of the sheet being written.
    sheet: usize,
    /// The next row to write in it.
    row: u32,
    rows_per_sheet: u32,
    header: Vec<String>,
    bold: Format,
}

impl XlsxSink {
    fn new(file: BufWriter<File>, tempdir: &Path, rows_per_sheet: u32) -> anyhow::Result<Self> {
        let mut book = Workbook::new();
        book.set_tempdir(tempdir)?;
        // Like the gzip CSV: a download that is kept a week favours speed over size.
        book.set_zip_compression_level(1);
        book.add_worksheet_with_constant_memory()?;
        Ok(XlsxSink {
            file,
            book,
            sheet: 0,
            row: 0,
            rows_per_sheet: rows_per_sheet.max(2),
            header: Vec::new(),
            bold: Format::new().set_bold(),
        })
    }

    fn header(&mut self, fields: Vec<String>) -> anyhow::Result<()> {
        self.header = fields;
        self.write_header()
    }

    /// Writes the header into the current sheet's first row, and sets the sheet up for it.
    fn write_header(&mut self) -> anyhow::Result<()> {
        let sheet = self.book.worksheet_from_index(self.sheet)?;
        for (col, name) in self.header.iter().enumerate() {
            let col = col as u16;
            // Wide enough for a time or an address; constant-memory sheets cannot autofit.
            sheet.set_column_width(col, 20)?;
            sheet.write_string_with_format(0, col, fit_cell(name), &self.bold)?;
        }
        sheet.set_freeze_panes(1, 0)?;
        self.row = 1;
        Ok(())
    }

    fn record<S: AsRef<str>>(&mut self, fields: &[S]) -> anyhow::Result<()> {
        if self.row >= self.rows_per_sheet {
            self.book.add_worksheet_with_constant_memory()?;
            self.sheet += 1;
            self.write_header()?;
        }
        let sheet = self.book.worksheet_from_index(self.sheet)?;
        for (col, value) in fields.iter().enumerate() {
            // Empty values make no cell at all, as Excel itself does.
            sheet.write_string(self.row, col as u16, fit_cell(value.as_ref()))?;
        }
        self.row += 1;
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<BufWriter<File>> {
        self.book.save_to_writer(&mut self.file)?;
        self.file.flush()?;
        Ok(self.file)
    }
}

/// Cuts a value to what one Excel cell holds, at a character boundary, rather than failing
/// the whole export for one overlong SMTP reply.
fn fit_cell(value: &str) -> &str {
    // UTF-8 never has fewer bytes than UTF-16 has units, so short strings need no count.
    if value.len() <= XLSX_CELL_MAX {
        return value;
    }
    let mut units = 0;
    let cut = value
        .char_indices()
        .find(|(_, c)| {
            units += c.len_utf16();
            units > XLSX_CELL_MAX
        })
        .map_or(value.len(), |(i, _)| i);
    &value[..cut]
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn sheet_xml(path: &Path, n: usize) -> Option<String> {
        let mut zip = zip::ZipArchive::new(File::open(path).unwrap()).unwrap();
        let mut xml = String::new();
        zip.by_name(&format!("xl/worksheets/sheet{n}.xml"))
            .ok()?
            .read_to_string(&mut xml)
            .unwrap();
        Some(xml)
    }

    #[test]
    fn a_full_sheet_goes_on_in_a_new_sheet_with_the_header_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.part");
        let file = BufWriter::new(File::create(&path).unwrap());
        let mut sink = Sink {
            inner: Inner::Xlsx(Box::new(XlsxSink::new(file, dir.path(), 3).unwrap())),
            mask: false,
        };
        sink.header(vec!["name".into(), "n".into()]).unwrap();
        for i in 0..5 {
            sink.record(&[format!("row{i}"), i.to_string()]).unwrap();
        }
        sink.finish().unwrap();
        // Three rows a sheet: a header and two records, then the next sheet.
        let rows = |xml: &str| xml.matches("<row ").count();
        let first = sheet_xml(&path, 1).unwrap();
        let third = sheet_xml(&path, 3).unwrap();
        assert_eq!(rows(&first), 3);
        assert_eq!(rows(&sheet_xml(&path, 2).unwrap()), 3);
        assert_eq!(rows(&third), 2);
        assert!(sheet_xml(&path, 4).is_none());
        assert!(first.contains("<t>row0</t>") && first.contains("<t>row1</t>"));
        assert!(third.starts_with("<?xml") && third.contains("<t>name</t>"));
        assert!(third.contains("<t>row4</t>"));
        // Only the sink's own file is left beside it: the spill files are gone.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn overlong_values_are_cut_to_what_a_cell_holds() {
        assert_eq!(fit_cell("short"), "short");
        let long = "é".repeat(XLSX_CELL_MAX + 10);
        let cut = fit_cell(&long);
        assert_eq!(cut.chars().count(), XLSX_CELL_MAX);
        // A character outside the BMP counts twice and is never split.
        let astral = "😀".repeat(XLSX_CELL_MAX);
        let cut = fit_cell(&astral);
        assert_eq!(cut.encode_utf16().count(), XLSX_CELL_MAX - 1);
    }
}
