//! The file formats of an export (DESIGN §5, §7): the `format` code is what the export forms
//! send and what the jobs table stores; the rest follows from it.

/// What an export file is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// UTF-8 with a BOM so that Excel shows Chinese; gzip on request.
    Csv,
    /// An Excel workbook; already a zip, so never gzipped again.
    Xlsx,
}

impl ExportFormat {
    pub const ALL: &'static [ExportFormat] = &[ExportFormat::Csv, ExportFormat::Xlsx];

    /// The contract code, as used in forms and stored on the job.
    pub fn code(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Xlsx => "xlsx",
        }
    }

    pub fn from_code(code: &str) -> Option<ExportFormat> {
        ExportFormat::ALL.iter().copied().find(|f| f.code() == code)
    }

    /// The name people know the format by, the same in every language.
    pub fn label(self) -> &'static str {
        match self {
            ExportFormat::Csv => "CSV",
            ExportFormat::Xlsx => "Excel (XLSX)",
        }
    }

    /// Whether gzip can be asked for: an XLSX file is compressed already.
    pub fn can_gzip(self) -> bool {
        self == ExportFormat::Csv
    }

    /// The file name's extension, `.gz` included.
    pub fn extension(self, gzip: bool) -> &'static str {
        match (self, gzip && self.can_gzip()) {
            (ExportFormat::Csv, false) => "csv",
            (ExportFormat::Csv, true) => "csv.gz",
            (ExportFormat::Xlsx, _) => "xlsx",
        }
    }

    /// The media type a download of the file is served with.
    pub fn content_type(self, gzip: bool) -> &'static str {
        match (self, gzip && self.can_gzip()) {
            (ExportFormat::Csv, false) => "text/csv; charset=utf-8",
            (ExportFormat::Csv, true) => "application/gzip",
            (ExportFormat::Xlsx, _) => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_refused() {
        for &f in ExportFormat::ALL {
            assert_eq!(ExportFormat::from_code(f.code()), Some(f));
        }
        assert_eq!(ExportFormat::from_code("pdf"), None);
        assert_eq!(ExportFormat::from_code("XLSX"), None);
    }

    #[test]
    fn xlsx_is_never_gzipped() {
        assert_eq!(ExportFormat::Csv.extension(true), "csv.gz");
        assert_eq!(ExportFormat::Xlsx.extension(true), "xlsx");
        assert_eq!(
            ExportFormat::Xlsx.content_type(true),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        );
        assert_eq!(ExportFormat::Csv.content_type(true), "application/gzip");
    }
}
