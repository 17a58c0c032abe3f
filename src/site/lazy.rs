//! Template values that convert a view only as far as a template reads it.
//!
//! minijinja turns a `Serialize` value into a template value whole, every field and every
//! nested list. A page that lists every flag reads a few fields of each flag's view (its name,
//! group, owners, states), not its charts, history or rollout steps; `Rows` gives such a page the
//! flags as a list whose items convert one field at a time, when the template reads it, and
//! drop it with the item.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Serde, Value};
use serde::Serialize;
use serde::ser::{self, Impossible, SerializeStruct};

use super::Views;

/// The flags of a page, by position in `Views::flags`.
#[derive(Debug)]
pub(super) struct Rows {
    views: Arc<Views>,
    /// The flags listed; all of them when `None`.
    positions: Option<Vec<usize>>,
}

impl Rows {
    /// Every flag.
    pub(super) fn all(views: &Arc<Views>) -> Value {
        Value::from_object(Rows {
            views: Arc::clone(views),
            positions: None,
        })
    }

    /// The flags at `positions`, in that order.
    pub(super) fn some(views: &Arc<Views>, positions: &[usize]) -> Value {
        Value::from_object(Rows {
            views: Arc::clone(views),
            positions: Some(positions.to_vec()),
        })
    }
}

impl Object for Rows {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let index = key.as_usize()?;
        let position = match &self.positions {
            Some(positions) => *positions.get(index)?,
            None => index,
        };
        (position < self.views.flags.len()).then(|| {
            Value::from_object(Row {
                views: Arc::clone(&self.views),
                position,
            })
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.positions.as_ref().map_or(self.views.flags.len(), Vec::len))
    }
}

/// One flag's view, converted field by field.
#[derive(Debug)]
struct Row {
    views: Arc<Views>,
    position: usize,
}

impl Object for Row {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        field(&self.views.flags[self.position], key.as_str()?)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            field_names(&self.views.flags[self.position])
                .into_iter()
                .map(Value::from)
                .collect(),
        )
    }
}

/// The field `name` of a struct as a template value; a value that is not a struct is converted
/// whole and looked up, so the result is always what minijinja would give.
fn field(value: &impl Serialize, name: &str) -> Option<Value> {
    match value.serialize(Fields::find(name)) {
        Ok(fields) => fields.found,
        Err(NotAStruct) => Value::from(Serde(value))
            .get_attr(name)
            .ok()
            .filter(|v| !v.is_undefined()),
    }
}

/// The names of the fields a struct serializes, in order.
fn field_names(value: &impl Serialize) -> Vec<&'static str> {
    match value.serialize(Fields::names()) {
        Ok(fields) => fields.names,
        Err(NotAStruct) => Vec::new(),
    }
}

/// A serializer that walks a struct's fields, converting only the one it looks for, or
/// listing their names.
struct Fields<'k> {
    wanted: Option<&'k str>,
    found: Option<Value>,
    names: Vec<&'static str>,
}

impl<'k> Fields<'k> {
    fn find(name: &'k str) -> Self {
        Fields {
            wanted: Some(name),
            found: None,
            names: Vec::new(),
        }
    }

    fn names() -> Self {
        Fields {
            wanted: None,
            found: None,
            names: Vec::new(),
        }
    }
}

/// What `Fields` answers for anything but a struct.
#[derive(Debug)]
struct NotAStruct;

impl fmt::Display for NotAStruct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a struct")
    }
}

impl std::error::Error for NotAStruct {}

impl ser::Error for NotAStruct {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotAStruct
    }
}

impl<'k> SerializeStruct for Fields<'k> {
    type Ok = Fields<'k>;
    type Error = NotAStruct;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), NotAStruct> {
        match self.wanted {
            Some(wanted) if wanted == key && self.found.is_none() => self.found = Some(Value::from(Serde(value))),
            Some(_) => {}
            None => self.names.push(key),
        }
        Ok(())
    }

    fn end(self) -> Result<Fields<'k>, NotAStruct> {
        Ok(self)
    }
}

/// Every method but `serialize_struct` refuses.
macro_rules! refuse {
    ($($method:ident($($argument:ty),*);)*) => {
        $(fn $method(self, $(_: $argument),*) -> Result<Self::Ok, NotAStruct> {
            Err(NotAStruct)
        })*
    };
}

impl<'k> ser::Serializer for Fields<'k> {
    type Ok = Fields<'k>;
    type Error = NotAStruct;
    type SerializeSeq = Impossible<Fields<'k>, NotAStruct>;
    type SerializeTuple = Impossible<Fields<'k>, NotAStruct>;
    type SerializeTupleStruct = Impossible<Fields<'k>, NotAStruct>;
    type SerializeTupleVariant = Impossible<Fields<'k>, NotAStruct>;
    type SerializeMap = Impossible<Fields<'k>, NotAStruct>;
    type SerializeStruct = Fields<'k>;
    type SerializeStructVariant = Impossible<Fields<'k>, NotAStruct>;

    refuse! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<Self::Ok, NotAStruct> {
        Err(NotAStruct)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, _: &T) -> Result<Self::Ok, NotAStruct> {
        Err(NotAStruct)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, NotAStruct> {
        Err(NotAStruct)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotAStruct> {
        Err(NotAStruct)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotAStruct> {
        Err(NotAStruct)
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, NotAStruct> {
        Err(NotAStruct)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotAStruct> {
        Err(NotAStruct)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotAStruct> {
        Err(NotAStruct)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, NotAStruct> {
        Ok(self)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotAStruct> {
        Err(NotAStruct)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Inner {
        status: &'static str,
    }

    #[derive(Serialize)]
    struct Outer {
        name: String,
        owners: Vec<&'static str>,
        inner: Inner,
        #[serde(skip_serializing_if = "Option::is_none")]
        missing: Option<u8>,
    }

    fn outer() -> Outer {
        Outer {
            name: "a_flag".into(),
            owners: vec!["@ada", "@bob"],
            inner: Inner { status: "ok" },
            missing: None,
        }
    }

    #[test]
    fn a_field_converts_as_the_whole_value_would() {
        let whole = Value::from(Serde(outer()));
        for name in ["name", "owners", "inner"] {
            assert_eq!(field(&outer(), name), Some(whole.get_attr(name).unwrap()), "{name}");
        }
        assert_eq!(field(&outer(), "missing"), None);
        assert_eq!(field(&outer(), "nothing"), None);
        assert_eq!(field_names(&outer()), ["name", "owners", "inner"]);
    }

    #[test]
    fn a_value_that_is_not_a_struct_is_looked_up_whole() {
        let map = std::collections::BTreeMap::from([("name", "a_flag")]);
        assert_eq!(field(&map, "name"), Some(Value::from("a_flag")));
        assert_eq!(field(&map, "other"), None);
        assert!(field_names(&map).is_empty());
    }

    #[test]
    fn rows_render_as_the_views_would() {
        let env = minijinja::Environment::new();
        let template = "{% for row in rows %}{{ row.name }} {{ row.owners|join(',') }} {{ row.inner.status }}{{ row.missing }};{% endfor %}";
        let whole = env
            .render_str(template, minijinja::context! { rows => Serde(vec![outer(), outer()]) })
            .unwrap();
        assert_eq!(whole, "a_flag @ada,@bob ok;a_flag @ada,@bob ok;");
        let object = Value::from_object(LazyList(vec![outer(), outer()]));
        let lazy = env
            .render_str(template, minijinja::context! { rows => object })
            .unwrap();
        assert_eq!(lazy, whole);
    }

    /// A list of `Outer`s read field by field, as `Rows` reads flags.
    #[derive(Debug)]
    struct LazyList(Vec<Outer>);

    impl fmt::Debug for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.name)
        }
    }

    #[derive(Debug)]
    struct LazyItem(Arc<LazyList>, usize);

    impl Object for LazyList {
        fn repr(self: &Arc<Self>) -> ObjectRepr {
            ObjectRepr::Seq
        }

        fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
            let index = key.as_usize().filter(|index| *index < self.0.len())?;
            Some(Value::from_object(LazyItem(Arc::clone(self), index)))
        }

        fn enumerate(self: &Arc<Self>) -> Enumerator {
            Enumerator::Seq(self.0.len())
        }
    }

    impl Object for LazyItem {
        fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
            field(&self.0.0[self.1], key.as_str()?)
        }
    }
}
