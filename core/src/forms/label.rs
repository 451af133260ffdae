//! A form's labels and the languages a phone may read them in: French, English and Arabic
//! always (the app's own), and any further language a programme writes its forms in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A form's labels: French, English and Arabic always (the app's own languages), and any
/// further language a programme writes them in (`bm`, Bambara, for Sikasso). French is the
/// default, and what a label missing in a further language shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub fr: String,
    pub en: String,
    pub ar: String,
    /// Labels in further languages, by tag. Flattened beside `fr`/`en`/`ar` (`"bm": "…"`), and
    /// absent when empty, so a definition without them serialises as it always has (published
    /// digests hold) and an older app, which ignores keys it does not know, reads the three.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub more: BTreeMap<String, String>,
}

/// A language a phone may be set to: the app speaks French, English or Arabic, and shows a
/// form's labels in any further language the form carries ([`Lang::Other`]); its own words in
/// such a language are French.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Lang {
    #[default]
    Fr,
    En,
    Ar,
    /// A language only forms carry, such as `bm` (Bambara).
    Other(LangTag),
}

/// A language's tag as forms write it: two or three lowercase ASCII letters (ISO 639-1 or
/// 639-3, `bm`, `tzm`), other than `fr`, `en` and `ar`. Kept inline so [`Lang`] stays `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LangTag([u8; 3]);

impl LangTag {
    /// `None` unless `tag` is two or three ASCII letters naming none of the app's languages.
    pub fn parse(tag: &str) -> Option<LangTag> {
        let bytes = tag.as_bytes();
        if !(2..=3).contains(&bytes.len()) || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return None;
        }
        let lower = tag.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "fr" | "en" | "ar" | "fra" | "fre" | "eng" | "ara"
        ) {
            return None;
        }
        let mut packed = [0u8; 3];
        packed[..bytes.len()].copy_from_slice(lower.as_bytes());
        Some(LangTag(packed))
    }

    pub fn as_str(&self) -> &str {
        let len = if self.0[2] == 0 { 2 } else { 3 };
        // Only ASCII letters are ever packed.
        std::str::from_utf8(&self.0[..len]).unwrap_or("fr")
    }
}

impl Lang {
    /// Parses a language tag or a POSIX locale (`en_GB.UTF-8`, `bm-ML`); a two- or three-letter
    /// language the app does not speak is [`Lang::Other`]; anything else falls back to French.
    pub fn from_tag(tag: &str) -> Lang {
        let primary = tag
            .split(['-', '_', '.', '@'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "fr" | "fra" | "fre" => Lang::Fr,
            "en" | "eng" => Lang::En,
            "ar" | "ara" => Lang::Ar,
            _ => match LangTag::parse(&primary) {
                Some(tag) => Lang::Other(tag),
                // "english", "arabic": how some tools name the language.
                None if primary.starts_with("en") => Lang::En,
                None if primary.starts_with("ar") => Lang::Ar,
                None => Lang::Fr,
            },
        }
    }

    /// The language's tag: `fr`, `en`, `ar` or the further language's own.
    pub fn tag(&self) -> &str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
            Lang::Ar => "ar",
            Lang::Other(tag) => tag.as_str(),
        }
    }

    /// The language the app's own words are in: French for a language only forms carry.
    pub fn app(self) -> Lang {
        match self {
            Lang::Other(_) => Lang::Fr,
            lang => lang,
        }
    }
}

impl Serialize for Lang {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.tag())
    }
}

impl<'de> Deserialize<'de> for Lang {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let tag = String::deserialize(deserializer)?;
        match tag.as_str() {
            "fr" => Ok(Lang::Fr),
            "en" => Ok(Lang::En),
            "ar" => Ok(Lang::Ar),
            other => LangTag::parse(other)
                .map(Lang::Other)
                .ok_or_else(|| serde::de::Error::custom(format!("not a language tag: {other}"))),
        }
    }
}

impl Label {
    /// The label in `lang`; in a further language the form does not carry, the French one.
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Fr => &self.fr,
            Lang::En => &self.en,
            Lang::Ar => &self.ar,
            Lang::Other(tag) => self
                .more
                .get(tag.as_str())
                .filter(|text| !text.trim().is_empty())
                .unwrap_or(&self.fr),
        }
    }

    /// Every text of the label, in every language it carries.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        [self.fr.as_str(), self.en.as_str(), self.ar.as_str()]
            .into_iter()
            .chain(self.more.values().map(String::as_str))
    }

    /// The label in the app's three languages only.
    pub fn new(fr: impl Into<String>, en: impl Into<String>, ar: impl Into<String>) -> Label {
        Label {
            fr: fr.into(),
            en: en.into(),
            ar: ar.into(),
            more: BTreeMap::new(),
        }
    }
}

/// Further languages one label may carry: a programme writes in a handful, never dozens.
pub const LABEL_LANGUAGES_MAX: usize = 8;

/// A label's further languages are tags in their written form (`bm`, never `BM` or `bambara`),
/// so a phone set to `bm` finds them, and few.
pub(crate) fn check_label(label: &Label) -> std::result::Result<(), String> {
    if label.more.len() > LABEL_LANGUAGES_MAX {
        return Err(format!("more than {LABEL_LANGUAGES_MAX} further languages"));
    }
    for tag in label.more.keys() {
        if LangTag::parse(tag).map(|t| t.as_str() == tag) != Some(true) {
            return Err(format!(
                "label language `{tag}` is not a language tag (two or three lowercase letters, \
                 other than fr, en and ar)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::forms::FormDefinition;

    /// A form written in Bambara beside the app's three languages: `sex` and its first choice
    /// carry `bm`, the title and the second choice do not.
    const BAMBARA: &str = r#"{"id":"t","version":1,"title":{"fr":"Fiche","en":"Sheet","ar":"بطاقة"},
        "fields":[{"id":"sex","type":"select_one",
            "label":{"fr":"Sexe","en":"Sex","ar":"الجنس","bm":"Cɛya walima musoya"},
            "choices":[{"id":"female","label":{"fr":"Fille","en":"Girl","ar":"بنت","bm":"Denmuso"}},
                       {"id":"male","label":{"fr":"Garçon","en":"Boy","ar":"ولد"}}]}]}"#;

    #[test]
    fn a_phone_language_the_app_does_not_speak_is_kept_for_forms() {
        let bm = Lang::from_tag("bm_ML.UTF-8");
        assert_eq!(bm.tag(), "bm");
        assert_eq!(bm.app(), Lang::Fr, "the app's own words are French");
        assert_eq!(Lang::from_tag("bm-ML"), bm);
        assert_eq!(Lang::from_tag("ar-MA"), Lang::Ar);
        assert_eq!(Lang::from_tag("en_GB.UTF-8"), Lang::En);
        assert_eq!(Lang::from_tag("English"), Lang::En);
        assert_eq!(Lang::from_tag("tzm").tag(), "tzm");
        for french in ["fr_FR.UTF-8", "C", "POSIX", "", "français", "b4"] {
            assert_eq!(Lang::from_tag(french), Lang::Fr, "{french}");
        }
        let json = serde_json::to_string(&[Lang::Fr, Lang::Ar, bm]).unwrap();
        assert_eq!(json, r#"["fr","ar","bm"]"#);
        assert_eq!(
            serde_json::from_str::<Vec<Lang>>(&json).unwrap(),
            [Lang::Fr, Lang::Ar, bm]
        );
        assert!(serde_json::from_str::<Lang>(r#""bambara""#).is_err());
    }

    #[test]
    fn a_label_reads_in_a_further_language_and_falls_back_to_french() {
        let form = FormDefinition::from_json(BAMBARA).unwrap();
        let bm = Lang::from_tag("bm");
        let sex = form.field("sex").unwrap();
        assert_eq!(sex.label.get(bm), "Cɛya walima musoya");
        assert_eq!(sex.choices[0].label.get(bm), "Denmuso");
        assert_eq!(
            sex.choices[1].label.get(bm),
            "Garçon",
            "missing in bm: French"
        );
        assert_eq!(form.title.get(bm), "Fiche");
        assert_eq!(form.title.get(Lang::from_tag("wo")), "Fiche");
        assert_eq!(sex.label.get(Lang::En), "Sex");
        // What an agent types in Bambara is understood too.
        assert_eq!(form.parse_input("sex", "denmuso").unwrap(), "female");
        // Written back as read, the further language beside the three.
        let again = FormDefinition::from_json(&form.canonical_json()).unwrap();
        assert_eq!(again, form);
        assert!(form.canonical_json().contains(r#""bm":"Denmuso""#));
        // A label without further languages serialises exactly as before they existed.
        assert!(!form.canonical_json().contains(r#""more""#));
    }

    #[test]
    fn a_further_language_is_a_tag_and_few() {
        let with =
            |key: &str| BAMBARA.replace(r#""bm":"Denmuso""#, &format!(r#""{key}":"Denmuso""#));
        for bad in ["BM", "bambara", "b", "b1", "FR"] {
            let refused = FormDefinition::from_json(&with(bad));
            assert!(
                matches!(&refused, Err(Error::InvalidFormDefinition { reason, .. })
                    if reason.contains("choice female") && reason.contains("not a language tag")),
                "{bad}: {refused:?}"
            );
        }
        let many: String = (0..=LABEL_LANGUAGES_MAX)
            .map(|i| format!(r#""b{}":"x","#, (b'a' + i as u8) as char))
            .collect();
        let crowded = BAMBARA.replace(r#""bm":"Denmuso""#, &format!(r#"{many}"bm":"Denmuso""#));
        assert!(matches!(
            FormDefinition::from_json(&crowded),
            Err(Error::InvalidFormDefinition { reason, .. }) if reason.contains("further languages")
        ));
        // A value that is not text is no label.
        assert!(FormDefinition::from_json(&BAMBARA.replace(r#""Denmuso""#, "7")).is_err());
    }

    /// A phone of the release before further languages parsed labels with this struct (serde
    /// ignores keys a struct does not name unless told otherwise): it reads a Bambara form's
    /// three languages and drops the rest, refusing nothing.
    #[test]
    fn an_older_phone_reads_a_form_with_a_further_language() {
        #[derive(Deserialize)]
        struct PreviousLabel {
            fr: String,
            en: String,
            ar: String,
        }
        #[derive(Deserialize)]
        struct PreviousChoice {
            #[allow(dead_code)]
            id: String,
            label: PreviousLabel,
        }
        #[derive(Deserialize)]
        struct PreviousField {
            label: PreviousLabel,
            choices: Vec<PreviousChoice>,
        }
        #[derive(Deserialize)]
        struct PreviousForm {
            fields: Vec<PreviousField>,
        }
        let json = FormDefinition::from_json(BAMBARA).unwrap().canonical_json();
        let old: PreviousForm = serde_json::from_str(&json).unwrap();
        let label = &old.fields[0].choices[0].label;
        assert_eq!(
            (label.fr.as_str(), label.en.as_str(), label.ar.as_str()),
            ("Fille", "Girl", "بنت")
        );
        assert_eq!(old.fields[0].label.fr, "Sexe");
    }
}
