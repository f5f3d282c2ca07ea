//! Inline SVG icons (first-party, drawn with a few strokes each). Inline markup keeps the console
//! to one request per page and needs no `style` attributes, so the CSP can stay strict; colours
//! come from `currentColor`.

macro_rules! icon {
    ($name:ident, $size:literal, $body:literal) => {
        #[doc = concat!("The `", stringify!($name), "` icon.")]
        pub const $name: &str = concat!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", $size, "\" height=\"", $size,
            "\" viewBox=\"0 0 24 24\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"2\" ",
            "stroke-linecap=\"round\" stroke-linejoin=\"round\" aria-hidden=\"true\" focusable=\"false\">",
            $body,
            "</svg>"
        );
    };
}

icon!(
    LOGO,
    "22",
    "<path d=\"M12 2 4 5.5v6c0 5 3.4 9.3 8 10.5 4.6-1.2 8-5.5 8-10.5v-6L12 2z\"/><circle cx=\"12\" cy=\"10.5\" r=\"2.5\"/><path d=\"M12 13v4\"/>"
);
icon!(
    HOME,
    "18",
    "<path d=\"M3 10.5 12 3l9 7.5\"/><path d=\"M5 9.5V21h14V9.5\"/><path d=\"M10 21v-6h4v6\"/>"
);
icon!(
    USERS,
    "18",
    "<circle cx=\"9\" cy=\"8\" r=\"3.5\"/><path d=\"M2.5 20c0-3.6 2.9-6 6.5-6s6.5 2.4 6.5 6\"/><path d=\"M16 4.5a3.5 3.5 0 0 1 0 7\"/><path d=\"M18 14.3c2 .7 3.5 2.8 3.5 5.7\"/>"
);
icon!(
    AUDIT,
    "18",
    "<path d=\"M14 3H6a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V9z\"/><path d=\"M14 3v6h6\"/><path d=\"M8 13h8M8 17h5\"/>"
);
icon!(
    SETTINGS,
    "18",
    "<circle cx=\"12\" cy=\"12\" r=\"3\"/><path d=\"M12 2v3M12 19v3M4.2 4.2l2.1 2.1M17.7 17.7l2.1 2.1M2 12h3M19 12h3M4.2 19.8l2.1-2.1M17.7 6.3l2.1-2.1\"/>"
);
icon!(
    ACCOUNT,
    "18",
    "<circle cx=\"12\" cy=\"8\" r=\"4\"/><path d=\"M4 21c0-4.4 3.6-7 8-7s8 2.6 8 7\"/>"
);
icon!(
    LOCK,
    "18",
    "<rect x=\"4\" y=\"11\" width=\"16\" height=\"10\" rx=\"2\"/><path d=\"M8 11V7a4 4 0 0 1 8 0v4\"/>"
);
icon!(
    LOGOUT,
    "16",
    "<path d=\"M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4\"/><path d=\"M16 17l5-5-5-5\"/><path d=\"M21 12H9\"/>"
);
icon!(
    SUN,
    "16",
    "<circle cx=\"12\" cy=\"12\" r=\"4\"/><path d=\"M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4\"/>"
);
icon!(
    MOON,
    "16",
    "<path d=\"M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z\"/>"
);
icon!(CHECK, "14", "<path d=\"M20 6 9 17l-5-5\"/>");
icon!(
    ALERT,
    "18",
    "<circle cx=\"12\" cy=\"12\" r=\"9\"/><path d=\"M12 8v5M12 16.5v.01\"/>"
);
icon!(
    INFO,
    "18",
    "<circle cx=\"12\" cy=\"12\" r=\"9\"/><path d=\"M12 11v5M12 7.5v.01\"/>"
);
icon!(
    SUCCESS,
    "18",
    "<circle cx=\"12\" cy=\"12\" r=\"9\"/><path d=\"M8 12.5l3 3 5-6\"/>"
);
icon!(
    SEARCH,
    "16",
    "<circle cx=\"11\" cy=\"11\" r=\"7\"/><path d=\"M20 20l-4-4\"/>"
);
icon!(PLUS, "16", "<path d=\"M12 5v14M5 12h14\"/>");
icon!(
    TRASH,
    "16",
    "<path d=\"M3 6h18\"/><path d=\"M8 6V4h8v2\"/><path d=\"M6 6l1 14h10l1-14\"/>"
);
icon!(
    PARTITION,
    "18",
    "<rect x=\"3\" y=\"4\" width=\"18\" height=\"7\" rx=\"2\"/><rect x=\"3\" y=\"13\" width=\"18\" height=\"7\" rx=\"2\"/><path d=\"M7 7.5h.01M7 16.5h.01\"/>"
);
icon!(
    PARTITIONS,
    "18",
    "<path d=\"M12 3 3 7.5l9 4.5 9-4.5L12 3z\"/><path d=\"M3 12l9 4.5 9-4.5\"/><path d=\"M3 16.5 12 21l9-4.5\"/>"
);
icon!(
    KEY,
    "18",
    "<circle cx=\"8\" cy=\"15\" r=\"4\"/><path d=\"M10.8 12.2 20 3\"/><path d=\"M16 7l3 3\"/><path d=\"M18 5l2 2\"/>"
);
icon!(
    SSO,
    "18",
    "<path d=\"M15 3h4a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2h-4\"/><path d=\"m10 17 5-5-5-5\"/><path d=\"M15 12H3\"/>"
);
