//! Microsoft's licence product names, keyed by SKU id (`data/microsoft-licence-products.csv`,
//! see `data/README.md`). Graph names a SKU only by its part number (`SPE_E3`); people know
//! it as "Microsoft 365 E3".

use std::collections::HashMap;
use std::sync::OnceLock;

const TABLE: &str = include_str!("../../data/microsoft-licence-products.csv");

/// One product of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    pub sku_id: String,
    pub part_number: String,
    pub name: String,
}

fn table() -> &'static HashMap<String, Product> {
    static TABLE_BY_ID: OnceLock<HashMap<String, Product>> = OnceLock::new();
    TABLE_BY_ID.get_or_init(|| {
        csv::Reader::from_reader(TABLE.as_bytes())
            .records()
            .map(|record| {
                let record = record.expect("the embedded licence table is well-formed CSV");
                let product = Product {
                    sku_id: record[0].to_ascii_lowercase(),
                    part_number: record[1].to_string(),
                    name: record[2].to_string(),
                };
                (product.sku_id.clone(), product)
            })
            .collect()
    })
}

/// The product with this SKU id (any case), if the table knows it.
pub fn product(sku_id: &str) -> Option<&'static Product> {
    table().get(&sku_id.to_ascii_lowercase())
}

/// A SKU's name for people: the product's name, else the part number Graph gave (Microsoft
/// adds SKUs all the time), else the id.
pub fn display_name(sku_id: &str, part_number: Option<&str>) -> String {
    match (product(sku_id), part_number) {
        (Some(p), _) => p.name.clone(),
        (None, Some(part)) if !part.is_empty() => part.to_string(),
        _ => sku_id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_products_by_sku_id_and_falls_back_to_the_part_number() {
        assert_eq!(table().len(), 619, "one row per SKU id");
        let e3 = product("05E9A617-0261-4CEE-BB44-138D3EF5D965").unwrap();
        assert_eq!(e3.part_number, "SPE_E3");
        assert_eq!(e3.name, "Microsoft 365 E3");
        assert_eq!(
            display_name("f245ecc8-75af-4f8e-b61f-27d8114de5f3", Some("whatever")),
            "Microsoft 365 Business Standard"
        );
        let unknown = "00000000-0000-0000-0000-0000000000ff";
        assert_eq!(display_name(unknown, Some("NEW_SKU")), "NEW_SKU");
        assert_eq!(display_name(unknown, None), unknown);
        // Quoted fields (a comma in a name) are read whole.
        assert!(table().values().any(|p| p.name.contains(',')));
    }
}
