//! Where an export's rows go. One `Sink` over the job's `.part` file for every format, so the
//! worker's keyset loop is the same for CSV and XLSX: the `Presenter` makes the fields, the
//! sink only lays them out. Memory stays flat in both: CSV streams through a buffer, XLSX
//! uses rust_xlsxwriter's constant-memory sheets, which keep one row in memory and spill the
//! rest to a temporary file until the workbook is zipped into the `.part` file at the end.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use flate2::write::GzEncoder;
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};

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

    /// The name of the XLSX sheets, in the viewer's language (the second and later sheets
    /// get a number after it); CSV has no sheets.
    pub fn name_sheets(&mut self, name: &str) -> anyhow::Result<()> {
        if let Inner::Xlsx(x) = &mut self.inner {
            x.name = sheet_name(name);
            x.name_sheet()?;
        }
        Ok(())
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
    /// Times as Excel dates, shown as the text exports show them.
    when: Format,
    /// The sheets' name; empty: Excel's default.
    name: String,
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
            when: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            name: String::new(),
        })
    }

    fn name_sheet(&mut self) -> anyhow::Result<()> {
        if self.name.is_empty() {
            return Ok(());
        }
        let name = match self.sheet {
            0 => self.name.clone(),
            n => format!("{} {}", self.name, n + 1),
        };
        self.book.worksheet_from_index(self.sheet)?.set_name(name)?;
        Ok(())
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
            self.name_sheet()?;
            self.write_header()?;
        }
        let sheet = self.book.worksheet_from_index(self.sheet)?;
        for (col, value) in fields.iter().enumerate() {
            // Empty values make no cell at all, as Excel itself does.
            let (row, col, value) = (self.row, col as u16, value.as_ref());
            match typed(value) {
                Typed::Number(n) => sheet.write_number(row, col, n)?,
                Typed::Time(t) => sheet.write_datetime_with_format(row, col, &t, &self.when)?,
                Typed::Text => sheet.write_string(row, col, fit_cell(value))?,
            };
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
/// What a cell of an export holds, read from its text: whole numbers and decimals (at most 15
/// digits, no leading zero: an id like `007` or a long numeric id stays text, as it was
/// written), times as exports write them (`2026-12-01 08:30:00`), and text.
enum Typed {
    Number(f64),
    Time(ExcelDateTime),
    Text,
}

fn typed(value: &str) -> Typed {
    let b = value.as_bytes();
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    let (int, frac) = match value.split_once('.') {
        Some((i, f)) => (i.as_bytes(), Some(f.as_bytes())),
        None => (b, None),
    };
    let int_ok = digits(int) && (int.len() == 1 || int[0] != b'0');
    let frac_ok = frac.is_none_or(|f| digits(f) && f.len() <= 6);
    if int_ok && frac_ok && int.len() + frac.map_or(0, <[u8]>::len) <= 15 {
        if let Ok(n) = value.parse::<f64>() {
            return Typed::Number(n);
        }
    }
    // `YYYY-MM-DD HH:MM:SS`
    let is_time = b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if is_time {
        let parsed = chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S");
        if let Ok(t) = parsed {
            use chrono::{Datelike, Timelike};
            if (1900..=9999).contains(&t.year()) {
                let excel =
                    ExcelDateTime::from_ymd(t.year() as u16, t.month() as u8, t.day() as u8)
                        .and_then(|d| d.and_hms(t.hour() as u16, t.minute() as u8, t.second()));
                if let Ok(excel) = excel {
                    return Typed::Time(excel);
                }
            }
        }
    }
    Typed::Text
}

/// A sheet name Excel accepts: at most 31 characters (room left for a number), none of
/// `[]:*?/\`.
fn sheet_name(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\'))
        .take(27)
        .collect::<String>()
        .trim()
        .to_string()
}

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
    fn numbers_and_times_are_written_as_numbers_and_dates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typed.part");
        let mut sink = Sink::create(&path, ExportFormat::Xlsx, false).unwrap();
        sink.name_sheets("邮件状态").unwrap();
        sink.header(vec!["id".into(), "n".into(), "when".into()])
            .unwrap();
        sink.record(&["007", "42", "2026-12-01 08:30:05"]).unwrap();
        sink.record(&["12345678901234567890", "3.5", "批量"])
            .unwrap();
        sink.finish().unwrap();
        let xml = sheet_xml(&path, 1).unwrap();
        // Numbers are `<v>` cells without a string type; times are numbers with a date style.
        assert!(xml.contains("<c r=\"B2\"><v>42</v></c>"), "{xml}");
        assert!(xml.contains("<c r=\"B3\"><v>3.5</v></c>"), "{xml}");
        let c2 = &xml[xml.find("<c r=\"C2\"").unwrap()..];
        let c2 = &c2[..c2.find("</c>").unwrap()];
        assert!(c2.contains(" s=\"") && !c2.contains("t=\""), "{c2}");
        assert!(c2.contains("<v>46357.35"), "{c2}");
        // Leading zeros, long ids and words stay text.
        for cell in ["A2", "A3", "C3"] {
            let at = &xml[xml.find(&format!("<c r=\"{cell}\"")).unwrap()..];
            assert!(at[..at.find('>').unwrap()].contains("t=\""), "{cell}: {at}");
        }
        let mut zip = zip::ZipArchive::new(File::open(&path).unwrap()).unwrap();
        let mut book = String::new();
        zip.by_name("xl/workbook.xml")
            .unwrap()
            .read_to_string(&mut book)
            .unwrap();
        assert!(book.contains("name=\"邮件状态\""), "{book}");
        let mut styles = String::new();
        zip.by_name("xl/styles.xml")
            .unwrap()
            .read_to_string(&mut styles)
            .unwrap();
        assert!(styles.contains("yyyy-mm-dd hh:mm:ss"));
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
