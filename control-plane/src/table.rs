//! Plain text tables for people: columns padded to their widest cell.

pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells print empty, extra ones are dropped.
    pub fn push(&mut self, mut row: Vec<String>) {
        row.resize(self.headers.len(), String::new());
        self.rows.push(row);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let last = row.len().saturating_sub(1);
            for (index, (cell, width)) in row.iter().zip(&widths).enumerate() {
                out.push_str(cell);
                if index < last {
                    let pad = width - cell.chars().count() + 2;
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// One record as `name  value` lines, the values lined up.
pub fn render_fields(fields: &[(&str, String)]) -> String {
    let width = fields
        .iter()
        .map(|(name, _)| name.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (name, value) in fields {
        out.push_str(name);
        out.extend(std::iter::repeat_n(' ', width - name.chars().count() + 2));
        out.push_str(value);
        out.push('\n');
    }
    out
}

/// `-` for an absent value.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut table = Table::new(&["ID", "ASSET"]);
        table.push(vec!["alice".into(), "USD".into()]);
        table.push(vec!["b".into()]);
        assert_eq!(table.render(), "ID     ASSET\nalice  USD\nb      \n");
        assert_eq!(or_dash(None::<u64>), "-");
        assert_eq!(or_dash(Some(5)), "5");
    }

    #[test]
    fn fields_line_up() {
        let fields = [("id", "a1".to_owned()), ("state", "completed".to_owned())];
        assert_eq!(render_fields(&fields), "id     a1\nstate  completed\n");
        assert_eq!(render_fields(&[]), "");
    }
}
