//! Values and pieces of configuration that the end-to-end tests share, so that a
//! change to the node's settings or the chart of assets is made once.

use crate::free_loopback_port;

/// The admin token of every data plane the tests start (long enough for any rule).
pub const ADMIN_TOKEN: &str = "admin-token-for-tests-0123456789";

/// Free loopback ports for a data plane: connector, admin, public.
pub fn free_node_ports() -> (u16, u16, u16) {
    (
        free_loopback_port(),
        free_loopback_port(),
        free_loopback_port(),
    )
}

/// `[[assets]]` tables, each `(code, ledger, initial_liquidity)` at scale 2, a blank
/// line between two, ending with a newline.
pub fn assets_toml(assets: &[(&str, u32, u64)]) -> String {
    let tables: Vec<String> = assets
        .iter()
        .map(|(code, ledger, liquidity)| {
            format!(
                "[[assets]]\ncode = \"{code}\"\nscale = 2\nledger = {ledger}\ninitial_liquidity = {liquidity}\n"
            )
        })
        .collect();
    tables.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_read_as_the_data_plane_reads_them() {
        let node = crate::dataplane::node_section("test.x", free_node_ports(), ADMIN_TOKEN);
        let assets = assets_toml(&[("USD", 1, 10), ("EUR", 2, 0)]);
        let text = format!("{node}\n{assets}\n[rates]\nrates = {{ EUR = 0.9 }}\n");
        let config = riptide_dataplane::config::Config::parse(&text, "test.toml", &|_| None)
            .expect("a valid configuration");
        let assets = &config.state.assets;
        assert_eq!(assets.len(), 2);
        assert_eq!((assets[1].code.as_str(), assets[1].ledger), ("EUR", 2));
        assert_eq!(assets[0].initial_liquidity, 10);
    }
}
